#!/usr/bin/env python
"""Generate cellkin's bundled **synthetic** example study (shaped like the KD-025 phase 1).

KD-025 is an NKG2D-based CAR-T product in advanced NKG2DL+ solid tumours: lymphodepletion, one
infusion of 1-10 x 10^6 CAR+ cells/kg, follow-up to one year. This script simulates a trial of
that shape — 3+3 dose escalation over 1, 3 and 10 x 10^6 CAR+ cells/kg, then an expansion
cohort at the highest tolerated level — and writes four tables plus a column dictionary:

* ``kinetics.csv``        qPCR (copies/ug gDNA) and flow (CAR+ cells/uL) samples;
* ``subjects.csv``        one row per subject: dose, demographics, outcomes;
* ``lesions.csv``         RECIST 1.1 lesion measurements at each tumour assessment;
* ``adverse_events.csv``  adverse events (CRS/ICANS graded per ASTCT, others per CTCAE);
* ``columns.json``        role, unit and description of every column (and the synthetic note).

No patient's data were used. Kinetics come from the Stein 2019 closed-form model
(doi:10.1002/psp4.12388) with its published between-subject variability around typical values
lowered for an NKG2D product; outcomes are drawn from exposure through the link functions
written below (and in data/README.md). The generic trial — the 3+3 path (DLTs drawn from each
subject's Cmax), the individual parameters with the dose effect, the visit windows, missed
visits and the qPCR and flow assays — is one ``cellkin.simulate.virtual_trial`` call (``TRIAL``
below; users can make their own trials the same way); this script adds the study-specific
parts: covariates, RECIST lesions, survival, adverse events, the end of sampling at
progression or death, and the qPCR assay background of one subject. Everything is seeded by
``SEED``: rerunning the script gives byte-identical files. Before writing, the script checks
its own output — a RECIST 1.1 self-check re-derives every subject's best overall response and
progression day from the lesion table, and the 3+3 decisions, DLT flags and follow-up limits
are asserted — and it fails rather than write an inconsistent study.

Usage::

    python data/make_example_study.py [--out DIR]     # default: cellkin/_example_data/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # use the cellkin of this source tree, not an installed one

from cellkin import models  # noqa: E402
from cellkin.simulate import (  # noqa: E402
    Assay,
    VirtualTrial,
    Visit,
    round_significant,
    virtual_trial,
)

SEED = 2025
DEFAULT_OUT = ROOT / "cellkin" / "_example_data"
FLOAT_FORMAT = "%.6g"

# ----------------------------------------------------------------------------- design
STUDY_ID = "KD025"
DOSE_LEVELS = {"DL1": 1.0, "DL2": 3.0, "DL3": 10.0}  # 1e6 CAR+ cells/kg
DOSE_UNIT = "1e6 cells/kg"
N_EXPANSION = 12
N_POOL = 40  # subjects drawn in enrolment order; the 3+3 path decides how many are used
DLT_WINDOW = (0, 28)  # days after infusion
END_OF_STUDY = 365  # day of the last protocol contact (OS censoring)

# ----------------------------------------------------------------------------- kinetics
MODEL = models.get("stein2019")
REFERENCE_DOSE = 3.0  # 1e6 CAR+ cells/kg, the dose at which TYPICAL applies
DOSE_EXPONENT = 0.5  # Cmax proportional to dose**0.5 (assumption, see README)
TYPICAL = {
    "cmax": 2000.0,  # copies/ug at 3e6 cells/kg (tisagenlecleucel: 24,000)
    "tmax": 10.0,  # day (9.3)
    "foldx": 100.0,  # (3,900)
    "alpha": 0.25,  # 1/day, contraction half-life 2.8 d (0.16, 4.3 d)
    "fb": 0.05,  # fraction of Cmax entering the slow phase (0.0079)
    "beta": 0.015,  # 1/day, persistence half-life 46 d (0.0032, 217 d)
}
# Between-subject variability: Stein 2019's published omegas (model.omega), unchanged.
FLOW_LAST_DAY = 84  # flow cytometry panel runs from D0 pre to D84
QPCR = Assay("qpcr", lloq=50.0, sigma=0.5, unit="copies/ug")
FLOW = Assay(
    "flow",
    lloq=0.5,
    sigma=0.35,
    unit="cells/uL",
    scale=0.005,  # typical cells/uL per copies/ug
    scale_omega=0.5,  # SD of the log conversion factor between subjects
    window=(-1, FLOW_LAST_DAY),  # nominal days: D0 pre to D84
)
NON_EXPANDERS = {"KD025-105": 12.0, "KD025-118": 10.0}  # subject: Cmax (copies/ug)
QPCR_BACKGROUND = {"KD025-110": 120.0}  # subject: assay background (copies/ug)

# Visit, nominal day, half-width of the uniform window on the actual day (`before`: the window
# lies before the nominal day: D0 pre is drawn 0-0.06 d (~1.5 h) before -0.02, and the last
# visit falls within the study).
VISITS = (
    Visit("SCR", -14.0, 4.0),
    Visit("D0 pre", -0.02, 0.06, "before"),
    Visit("D1", 1.0, 0.1),
    Visit("D4", 4.0, 0.5),
    Visit("D7", 7.0, 0.5),
    Visit("D10", 10.0, 0.5),
    Visit("D14", 14.0, 0.5),
    Visit("D21", 21.0, 1.0),
    Visit("D28", 28.0, 1.0),
    Visit("D42", 42.0, 2.0),
    Visit("D56", 56.0, 2.0),
    Visit("D84", 84.0, 3.0),
    Visit("D112", 112.0, 3.0),
    Visit("D180", 180.0, 7.0),
    Visit("D270", 270.0, 7.0),
    Visit("D365", float(END_OF_STUDY), 7.0, "before"),
)
P_MISSED_VISIT = 0.06  # post-infusion visits only

# ----------------------------------------------------------------------------- link functions
AUC_WINDOW = (0.0, 28.0)
AUC_REF = MODEL.auc(*AUC_WINDOW, TYPICAL)  # AUC0-28 of the typical subject at 3e6/kg
CMAX_REF = TYPICAL["cmax"]
# P(responder) = expit(logit(P_RESPONSE_REF) + B_RESPONSE * ln(AUC0-28 / AUC_REF))
P_RESPONSE_REF = 0.12
B_RESPONSE = 1.5
P_CR_GIVEN_RESPONSE = 0.3
# Ordinal logistic: P(grade >= k) = expit(logit(P_ref[k]) + B * ln(Cmax / CMAX_REF)), k = 1..4
CRS_P_REF = (0.50, 0.20, 0.05, 0.01)
B_CRS = 1.5
ICANS_P_REF = (0.10, 0.04, 0.015, 0.003)
B_ICANS = 1.2
# Other related grade 3 non-haematological toxicity in the DLT window (hepatic enzymes, hypoxia)
P_OTHER_G3_REF = 0.04
B_OTHER_G3 = 1.0
# Progression: exponential latent time, hazard
#   h = ln2 / PFS_MEDIAN_REF * exp(B_PFS_RESPONDER * responder + B_PFS_AUC * ln(AUC / AUC_REF))
PFS_MEDIAN_REF = 45.0
B_PFS_RESPONDER = math.log(0.25)
B_PFS_AUC = -0.3
POST_PROGRESSION_MEDIAN = 120.0  # days from progression to death (exponential)
WITHDRAWAL = (4, 18)  # the 4th expansion subject withdraws consent on day 18

# ----------------------------------------------------------------------------- tumours
TUMOUR_TYPES = {  # type: (probability, target organs, non-target organs)
    "hepatocellular": (0.30, ("liver", "lung", "lymph node", "adrenal gland"), ("bone", "lung")),
    "colorectal": (0.25, ("liver", "lung", "lymph node", "peritoneum"), ("lung", "peritoneum")),
    "gastric": (0.15, ("liver", "lymph node", "peritoneum", "lung"), ("peritoneum", "bone")),
    "pancreatic": (0.15, ("pancreas", "liver", "lung", "lymph node"), ("liver", "peritoneum")),
    "ovarian": (0.15, ("peritoneum", "liver", "lymph node", "spleen"), ("pleura", "peritoneum")),
}
NEW_LESION_ORGANS = ("liver", "lung", "bone", "peritoneum", "brain")
# Tumour assessments: nominal days after infusion (baseline is the screening scan).
ASSESSMENT_DAYS = (28, 56, 84, 140, 196, 252, 308, 364)
ASSESSMENT_JITTER = 3  # integer days either side

# ----------------------------------------------------------------------------- adverse events
SOC = {
    "blood": "Blood and lymphatic system disorders",
    "general": "General disorders and administration site conditions",
    "gi": "Gastrointestinal disorders",
    "immune": "Immune system disorders",
    "infections": "Infections and infestations",
    "investigations": "Investigations",
    "metabolism": "Metabolism and nutrition disorders",
    "nervous": "Nervous system disorders",
    "respiratory": "Respiratory, thoracic and mediastinal disorders",
    "vascular": "Vascular disorders",
}
CRS_TERM = "Cytokine release syndrome"
ICANS_TERM = "Immune effector cell-associated neurotoxicity syndrome"
HAEMATOLOGICAL = frozenset(
    {
        "Anaemia",
        "Lymphocyte count decreased",
        "Neutrophil count decreased",
        "Platelet count decreased",
    }
)
# Background events: term, SOC key, probability, {grade: weight}, onset range, duration range,
# related. Onsets before day 0 follow lymphodepletion (fludarabine/cyclophosphamide, days -5 to -3).
BACKGROUND_EVENTS = (
    (
        "Lymphocyte count decreased",
        "investigations",
        0.90,
        {3: 0.3, 4: 0.7},
        (-4, -1),
        (14, 60),
        False,
    ),
    (
        "Neutrophil count decreased",
        "investigations",
        0.70,
        {2: 0.2, 3: 0.4, 4: 0.4},
        (-2, 6),
        (5, 25),
        True,
    ),
    ("Anaemia", "blood", 0.50, {1: 0.3, 2: 0.5, 3: 0.2}, (-3, 10), (10, 40), True),
    (
        "Platelet count decreased",
        "investigations",
        0.45,
        {1: 0.3, 2: 0.3, 3: 0.3, 4: 0.1},
        (0, 10),
        (7, 35),
        True,
    ),
    ("Nausea", "gi", 0.40, {1: 0.7, 2: 0.3}, (-5, 10), (1, 6), False),
    ("Fatigue", "general", 0.45, {1: 0.6, 2: 0.4}, (1, 30), (7, 45), True),
    ("Pyrexia", "general", 0.20, {1: 1.0}, (1, 5), (1, 3), True),
    ("Decreased appetite", "metabolism", 0.30, {1: 0.6, 2: 0.4}, (1, 20), (5, 30), False),
    ("Hypokalaemia", "metabolism", 0.15, {1: 0.7, 2: 0.3}, (1, 14), (2, 10), False),
    (
        "Aspartate aminotransferase increased",
        "investigations",
        0.30,
        {1: 0.7, 2: 0.3},
        (2, 14),
        (5, 20),
        True,
    ),
    (
        "Alanine aminotransferase increased",
        "investigations",
        0.25,
        {1: 0.7, 2: 0.3},
        (2, 14),
        (5, 20),
        True,
    ),
    ("Headache", "nervous", 0.20, {1: 1.0}, (1, 10), (1, 4), True),
    ("Diarrhoea", "gi", 0.15, {1: 0.7, 2: 0.3}, (1, 20), (2, 7), False),
    ("Hypotension", "vascular", 0.10, {1: 0.6, 2: 0.4}, (1, 7), (1, 4), True),
    ("Pneumonia", "infections", 0.08, {3: 1.0}, (35, 80), (7, 21), False),
    (
        "Upper respiratory tract infection",
        "infections",
        0.20,
        {1: 0.6, 2: 0.4},
        (91, 300),
        (5, 14),
        False,
    ),
    ("Fatigue", "general", 0.15, {1: 0.6, 2: 0.4}, (95, 330), (14, 60), False),
    ("Herpes zoster", "infections", 0.06, {2: 1.0}, (100, 330), (10, 21), True),
)
OTHER_G3_TERMS = (
    ("Aspartate aminotransferase increased", "investigations"),
    ("Alanine aminotransferase increased", "investigations"),
    ("Hypoxia", "respiratory"),
)

COLUMNS = {
    "kinetics": {
        "subject": ("id", None, "subject identifier"),
        "time": ("time", "day", "actual time since the CAR-T infusion (day 0); negative = before"),
        "value": ("dv", "see unit", "measured level; empty when the sample is below the LLOQ"),
        "assay": ("assay", None, "qpcr (CAR transgene) or flow (CAR+ T cells)"),
        "unit": ("unit", None, "unit of value and lloq: copies/ug (gDNA) or cells/uL (blood)"),
        "lloq": ("lloq", "see unit", "lower limit of quantification of the sample"),
        "blq": ("blq", None, "true when the sample is below the LLOQ"),
        "visit": ("visit", None, "protocol visit label (SCR = screening, D0 pre = pre-infusion)"),
        "nominal_time": ("nominal_time", "day", "protocol (nominal) day of the visit"),
    },
    "subjects": {
        "subject": ("id", None, "subject identifier"),
        "dose": ("dose", "1e6 cells/kg", "infused CAR+ T cells per kg body weight"),
        "dose_unit": ("unit", None, "unit of dose"),
        "dose_level": ("dose", None, "dose level label: DL1 = 1, DL2 = 3, DL3 = 10 x 10^6/kg"),
        "cohort": ("covariate", None, "escalation (3+3) or expansion"),
        "age": ("covariate", "year", "age at enrolment"),
        "sex": ("covariate", None, "F or M"),
        "tumour_type": ("covariate", None, "NKG2DL+ solid tumour type"),
        "baseline_sld_mm": ("covariate", "mm", "baseline sum of target lesion diameters (RECIST)"),
        "bor": (
            "outcome",
            None,
            "best overall response per RECIST 1.1 (confirmed): CR/PR/SD/PD/NE",
        ),
        "responder": ("outcome", None, "true when bor is CR or PR"),
        "crs_grade": ("outcome", None, "worst cytokine release syndrome grade (ASTCT 0-4)"),
        "icans_grade": ("outcome", None, "worst ICANS grade (ASTCT 0-4)"),
        "dlt": ("outcome", None, "dose-limiting toxicity in the DLT window (days 0-28)"),
        "pfs_days": ("outcome", "day", "progression-free survival time from infusion"),
        "pfs_event": ("outcome", None, "true = progression (RECIST PD); false = censored"),
        "os_days": ("outcome", "day", "overall survival time from infusion"),
        "os_event": ("outcome", None, "true = death; false = censored"),
    },
    "lesions": {
        "subject": ("id", None, "subject identifier"),
        "day": ("time", "day", "day of the tumour assessment relative to infusion"),
        "lesion_id": ("id", None, "lesion identifier within subject (T = target, NT, N = new)"),
        "kind": ("covariate", None, "target, nontarget or new"),
        "organ": ("covariate", None, "organ or site of the lesion"),
        "nodal": ("covariate", None, "true for lymph nodes (measured in short axis)"),
        "diameter_mm": ("dv", "mm", "long axis (short axis for nodes); targets only, 0 = gone"),
        "status": ("dv", None, "non-target/new: present, absent or unequivocal_progression"),
    },
    "adverse_events": {
        "subject": ("id", None, "subject identifier"),
        "term": ("covariate", None, "MedDRA preferred term"),
        "soc": ("covariate", None, "MedDRA system organ class"),
        "grade": ("dv", None, "CTCAE v5 grade 1-5 (CRS and ICANS: ASTCT consensus grade)"),
        "onset_day": ("time", "day", "onset relative to infusion (negative = before infusion)"),
        "end_day": ("time", "day", "day of resolution; empty when ongoing at end of follow-up"),
        "serious": ("covariate", None, "serious adverse event"),
        "related": ("covariate", None, "related to the CAR-T product per investigator"),
        "dlt": ("outcome", None, "counted as a dose-limiting toxicity"),
    },
}
SYNTHETIC_NOTE = (
    "SYNTHETIC DATA. Simulated by data/make_example_study.py (seed {seed}) to resemble a "
    "phase 1 NKG2D CAR-T trial (KD-025-like design); no patient's data were used. Do not use "
    "for clinical or scientific conclusions."
)


# ============================================================================= helpers
def _rng(*key: int) -> np.random.Generator:
    """Independent stream for one purpose (and one subject), stable under code reordering."""
    return np.random.default_rng([SEED, *key])


def _ordinal_grade(u: float, p_ref: tuple[float, ...], slope: float, x: float) -> int:
    """Grade k with P(grade >= k) = expit(logit(p_ref[k-1]) + slope * x), from a uniform u."""
    exceed = expit(logit(np.asarray(p_ref)) + slope * x)
    return int(np.sum(u < exceed))


@dataclass
class Subject:
    """Everything simulated for one enrolled subject."""

    index: int
    subject: str
    params: dict[str, float]
    dose_level: str
    cohort: str
    crs_grade: int
    icans_grade: int
    other_g3: bool
    dlt: bool = False
    covariates: dict[str, object] = field(default_factory=dict)
    outcome: dict[str, object] = field(default_factory=dict)
    last_contact: float = END_OF_STUDY


# ============================================================================= enrolment
# The generic part of the trial, simulated by cellkin.simulate.virtual_trial: the 3+3 path, the
# individual parameters (dose effect, non-expanders), the visits and the two assays.
TRIAL = {
    "dose_levels": DOSE_LEVELS,
    "design": "3+3",
    "n_expansion": N_EXPANSION,
    "max_subjects": N_POOL,
    "typical": TYPICAL,
    "dose_effect": {"cmax": DOSE_EXPONENT},
    "reference_dose": REFERENCE_DOSE,
    "overrides": {subject: {"cmax": cmax} for subject, cmax in NON_EXPANDERS.items()},
    "visits": VISITS,
    "p_missed": P_MISSED_VISIT,
    "dose_unit": DOSE_UNIT,
    "subject_prefix": f"{STUDY_ID}-",
    "first_number": 101,
    "value_digits": 4,
}


def _toxicity_rule(grades: dict[str, tuple[int, int, bool]]) -> Callable[..., bool]:
    """The DLT rule of the 3+3: CRS, ICANS and other grade 3 toxicity drawn from Cmax.

    Each subject's grades are recorded in ``grades``; its DLT is CRS >= 3, ICANS >= 3 or the
    other grade 3 toxicity. ``rng`` is the subject's own stream (``[SEED, index, 3]``).
    """

    def dlt(subject: str, level: str, params: dict[str, float], rng: np.random.Generator) -> bool:
        x = math.log(params["cmax"] / CMAX_REF)
        u = rng.uniform(size=3)
        crs = _ordinal_grade(u[0], CRS_P_REF, B_CRS, x)
        icans = _ordinal_grade(u[1], ICANS_P_REF, B_ICANS, x)
        other_g3 = bool(u[2] < expit(logit(P_OTHER_G3_REF) + B_OTHER_G3 * x))
        grades[subject] = (crs, icans, other_g3)
        return crs >= 3 or icans >= 3 or other_g3

    return dlt


def enrol(design: VirtualTrial, grades: dict[str, tuple[int, int, bool]]) -> list[Subject]:
    """The enrolled subjects (3+3 escalation, then N_EXPANSION at the highest tolerated level)."""
    if design.mtd is None:
        raise RuntimeError("3+3: the lowest dose level is not tolerated; change SEED")
    subjects = []
    for index, row in enumerate(design.subjects.itertuples(index=False)):
        crs, icans, other_g3 = grades[row.subject]
        params = design.parameters.iloc[index]
        subjects.append(
            Subject(
                index=index,
                subject=row.subject,
                params={name: float(params[name]) for name in MODEL.param_names},
                dose_level=row.dose_level,
                cohort=row.cohort,
                crs_grade=crs,
                icans_grade=icans,
                other_g3=other_g3,
                dlt=bool(row.dlt),
            )
        )
    return subjects


# ============================================================================= covariates
def _demographics(s: Subject) -> None:
    rng = _rng(s.index, 5)
    names = list(TUMOUR_TYPES)
    tumour = names[rng.choice(len(names), p=[TUMOUR_TYPES[n][0] for n in names])]
    sex = "F" if tumour == "ovarian" else ("M" if rng.uniform() < 0.6 else "F")
    age = int(np.clip(round(rng.normal(56, 10)), 28, 75))
    s.covariates = {"age": age, "sex": sex, "tumour_type": tumour}


def _baseline_lesions(s: Subject) -> list[dict]:
    """Target (1-5, <= 2 per organ) and non-target (0-3) lesions at baseline."""
    rng = _rng(s.index, 6)
    _, target_organs, nontarget_organs = TUMOUR_TYPES[s.covariates["tumour_type"]]
    n_target = int(rng.choice([1, 2, 3, 4, 5], p=[0.1, 0.25, 0.3, 0.2, 0.15]))
    slots = [organ for organ in target_organs for _ in range(2)]  # <= 2 per organ
    organs = sorted(rng.choice(len(slots), size=n_target, replace=False))
    lesions = []
    for k, slot in enumerate(organs, start=1):
        organ = slots[slot]
        nodal = organ == "lymph node"
        if nodal:
            size = round(rng.uniform(15, 40))  # short axis >= 15 mm
        else:
            size = round(10 + rng.lognormal(math.log(18), 0.5))  # long axis >= 10 mm
        lesions.append(
            {"lesion_id": f"T{k}", "kind": "target", "organ": organ, "nodal": nodal, "size": size}
        )
    n_nontarget = int(rng.choice([0, 1, 2, 3], p=[0.3, 0.35, 0.25, 0.1]))
    for k in range(1, n_nontarget + 1):
        organ = nontarget_organs[rng.integers(len(nontarget_organs))]
        if rng.uniform() < 0.2:
            organ = "lymph node"
        lesions.append(
            {
                "lesion_id": f"NT{k}",
                "kind": "nontarget",
                "organ": organ,
                "nodal": organ == "lymph node",
                "size": None,
            }
        )
    return lesions


# ============================================================================= outcomes
def _outcomes(s: Subject, withdrawn_day: float | None) -> list[dict]:
    """Best response, progression, death and the lesion table consistent with them."""
    rng = _rng(s.index, 7)
    x_auc = math.log(MODEL.auc(*AUC_WINDOW, s.params) / AUC_REF)
    u_response, u_cr, u_pfs, u_os = rng.uniform(size=4)
    responder = bool(u_response < expit(logit(P_RESPONSE_REF) + B_RESPONSE * x_auc))
    hazard = math.log(2) / PFS_MEDIAN_REF
    hazard *= math.exp(B_PFS_RESPONDER * responder + B_PFS_AUC * x_auc)
    latent_progression = -math.log(u_pfs) / hazard

    lesions = _baseline_lesions(s)
    scan_day = round(s.covariates["screening_day"])
    jitter = rng.integers(-ASSESSMENT_JITTER, ASSESSMENT_JITTER + 1, size=len(ASSESSMENT_DAYS))
    days = [min(int(d + j), END_OF_STUDY) for d, j in zip(ASSESSMENT_DAYS, jitter, strict=True)]
    if withdrawn_day is not None:
        days = [d for d in days if d <= withdrawn_day]

    # Intended course: category per assessment and the index of the PD assessment (or None).
    if not days:
        bor, pd_index, plan = "NE", None, []
    elif responder:
        bor = "CR" if u_cr < P_CR_GIVEN_RESPONSE else "PR"
        onset = 0 if rng.uniform() < 0.6 else 1
        first_cr = onset + 1 if bor == "CR" else None
        confirm_from = days[first_cr if bor == "CR" else onset] + 28
        confirmed = next(i for i, d in enumerate(days) if d >= confirm_from)
        earliest_pd = confirmed + 1
        pd_index = next(
            (i for i, d in enumerate(days) if i >= earliest_pd and d >= latent_progression), None
        )
        plan = []
        for i in range(len(days) if pd_index is None else pd_index + 1):
            if i == pd_index:
                plan.append("PD")
            elif i < onset:
                plan.append("SD")
            elif first_cr is not None and i >= first_cr:
                plan.append("CR")
            else:
                plan.append("PR")
    else:
        pd_index = next((i for i, d in enumerate(days) if d >= latent_progression), None)
        bor = "PD" if pd_index == 0 else "SD"
        n = len(days) if pd_index is None else pd_index + 1
        plan = ["PD" if i == pd_index else "SD" for i in range(n)]

    rows = _lesion_rows(s, lesions, scan_day, days, plan, rng)
    s.covariates["baseline_sld_mm"] = int(
        sum(les["size"] for les in lesions if les["kind"] == "target")
    )

    # Survival
    if pd_index is not None:
        pfs_days, pfs_event = days[pd_index], True
        death = pfs_days + max(1, round(-math.log(u_os) * POST_PROGRESSION_MEDIAN / math.log(2)))
        os_event = death <= END_OF_STUDY
        os_days = death if os_event else END_OF_STUDY
    elif withdrawn_day is not None:
        pfs_days, pfs_event = int(withdrawn_day), False
        os_days, os_event = int(withdrawn_day), False
    else:
        pfs_days, pfs_event = days[len(plan) - 1], False
        os_days, os_event = END_OF_STUDY, False
    s.outcome = {
        "bor": bor,
        "responder": bor in ("CR", "PR"),
        "pfs_days": pfs_days,
        "pfs_event": pfs_event,
        "os_days": os_days,
        "os_event": os_event,
    }
    s.last_contact = os_days
    return rows


def _lesion_rows(
    s: Subject,
    lesions: list[dict],
    scan_day: int,
    days: list[int],
    plan: list[str],
    rng: np.random.Generator,
) -> list[dict]:
    """Measurements at baseline and at each planned assessment (stops at PD)."""
    targets = [les for les in lesions if les["kind"] == "target"]
    nontargets = [les for les in lesions if les["kind"] == "nontarget"]
    base = np.array([les["size"] for les in targets], dtype=float)
    nodal = np.array([les["nodal"] for les in targets])
    total0 = base.sum()
    rows = [
        _row(s, scan_day, les, les["size"] if les["kind"] == "target" else None) for les in lesions
    ]
    for les in nontargets:
        rows[lesions.index(les)]["status"] = "present"
    nadir = 1.0  # ratio of the smallest sum so far to baseline
    previous = 1.0
    for i, (day, category) in enumerate(zip(days, plan, strict=False)):
        mode = None
        if category == "PD":
            choices = ["target", "new"] + (["nontarget"] if nontargets else [])
            weights = [0.55, 0.3] + ([0.15] if nontargets else [])
            if "CR" in plan[:i]:
                choices, weights = ["new"], [1.0]
            mode = str(rng.choice(choices, p=np.array(weights) / sum(weights)))
        if category == "CR":
            sizes = np.where(nodal, np.clip(np.round(base * 0.3), 4, 9), 0.0)
        else:
            wanted = "PD" if mode == "target" else category
            for _ in range(100):
                sizes = _target_sizes(category, mode, i, base, nodal, nadir, previous, rng)
                got = target_response(sizes, nodal, total0, nadir * total0)
                if got == wanted or (category == "PD" and mode != "target" and got != "CR"):
                    break
            else:
                raise RuntimeError(f"{s.subject}: cannot draw {wanted} target sizes")
        total = sizes.sum() / total0
        previous = total
        nadir = min(nadir, total)
        for les, size in zip(targets, sizes, strict=True):
            rows.append(_row(s, day, les, float(size)))
        for les in nontargets:
            status = "absent" if category == "CR" else "present"
            if mode == "nontarget":
                status = "unequivocal_progression"
            rows.append(_row(s, day, les, None, status))
        if mode == "new":
            organ = NEW_LESION_ORGANS[rng.integers(len(NEW_LESION_ORGANS))]
            new = {"lesion_id": "N1", "kind": "new", "organ": organ, "nodal": False}
            rows.append(_row(s, day, new, None, "present"))
    return rows


def _target_sizes(
    category: str,
    mode: str | None,
    i: int,
    base: np.ndarray,
    nodal: np.ndarray,
    nadir: float,
    previous: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Target diameters (mm) whose sum is a ratio of baseline typical of ``category``."""
    if category == "SD":
        low, high = (0.80, 1.12) if i == 0 else (max(0.78, nadir * 0.95), nadir * 1.12)
        ratio = rng.uniform(low, min(high, 1.15 * nadir))
    elif category == "PR":
        first = previous > 0.62
        ratio = rng.uniform(0.35, 0.62) if first else previous * rng.uniform(0.8, 1.08)
        ratio = min(ratio, 0.62, 1.12 * nadir)
    elif mode == "target":
        ratio = max(nadir * rng.uniform(1.25, 1.6), nadir + 8.0 / base.sum())
    else:  # PD by a new lesion or non-target progression: targets about stable
        ratio = nadir * rng.uniform(0.95, 1.1)
    sizes = base * np.exp(0.1 * rng.standard_normal(base.size))
    sizes *= ratio * base.sum() / sizes.sum()
    return np.round(np.maximum(sizes, np.where(nodal, 10.0, 5.0)))


def target_response(sizes: np.ndarray, nodal: np.ndarray, base_sum: float, nadir_sum: float) -> str:
    """RECIST 1.1 target-lesion response at one assessment (Eisenhauer 2009, section 4.3.1).

    PD: sum >= 1.2 x nadir and >= nadir + 5 mm; CR: every non-nodal target gone (0 mm) and
    every nodal target < 10 mm short axis; PR: sum <= 0.7 x baseline; otherwise SD.
    """
    sizes = np.asarray(sizes, dtype=float)
    nodal = np.asarray(nodal, dtype=bool)
    total = sizes.sum()
    if total >= 1.2 * nadir_sum and total - nadir_sum >= 5:
        return "PD"
    if (sizes[~nodal] == 0).all() and (sizes[nodal] < 10).all():
        return "CR"
    if total <= 0.7 * base_sum:
        return "PR"
    return "SD"


def _row(s: Subject, day: int, les: dict, size: float | None, status: str | None = None) -> dict:
    return {
        "subject": s.subject,
        "day": int(day),
        "lesion_id": les["lesion_id"],
        "kind": les["kind"],
        "organ": les["organ"],
        "nodal": bool(les["nodal"]),
        "diameter_mm": math.nan if size is None else float(size),
        "status": status,
    }


# ============================================================================= kinetics
def _last_sample(s: Subject, schedule: pd.DataFrame) -> float:
    """Day of the last CK sample: sampling ends at death or withdrawal, and one visit after
    progression is kept."""
    times = schedule.loc[schedule["subject"] == s.subject, "time"].to_numpy()
    keep = times <= s.last_contact if not s.outcome["os_event"] else times < s.last_contact
    if s.outcome["pfs_event"]:
        after = np.flatnonzero(times > s.outcome["pfs_days"])
        if after.size:
            keep &= np.arange(times.size) <= after[0]
    return float(times[keep].max())


def _kinetics(trial: VirtualTrial, subjects: list[Subject]) -> pd.DataFrame:
    """The trial's qPCR and flow samples plus the qPCR of subjects with an assay background."""
    keys = ["subject", "time"]
    background = _background_qpcr(subjects, trial.schedule)
    background = background.merge(trial.schedule, on=keys, how="left", validate="many_to_one")
    background["value"] = round_significant(background["value"], 4)
    table = pd.concat([trial.kinetics, background], ignore_index=True)
    order = {QPCR.name: 0, FLOW.name: 1}
    table = table.sort_values(
        ["subject", "assay", "time"], key=lambda c: c.map(order) if c.name == "assay" else c
    )
    return table.reset_index(drop=True).loc[:, list(COLUMNS["kinetics"])]


def _background_qpcr(subjects: list[Subject], schedules: pd.DataFrame) -> pd.DataFrame:
    """qPCR of subjects with an assay background b: y = (f(t) + b) exp(sigma eps)."""
    frames = []
    for s in subjects:
        if s.subject not in QPCR_BACKGROUND:
            continue
        times = schedules.loc[schedules["subject"] == s.subject, "time"].to_numpy()
        level = MODEL.simulate(times, s.params) + QPCR_BACKGROUND[s.subject]
        observed = level * np.exp(QPCR.sigma * _rng(s.index, 102).standard_normal(times.size))
        blq = observed < QPCR.lloq
        frames.append(
            pd.DataFrame(
                {
                    "subject": s.subject,
                    "time": times,
                    "value": np.where(blq, np.nan, observed),
                    "assay": "qpcr",
                    "unit": QPCR.unit,
                    "lloq": QPCR.lloq,
                    "blq": blq,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ============================================================================= adverse events
def _adverse_events(s: Subject) -> list[dict]:
    rng = _rng(s.index, 8)
    last = s.last_contact
    events = []

    def add(term: str, soc: str, grade: int, onset: int, duration: int, related: bool) -> None:
        if onset > last:
            return
        end = onset + duration
        serious = grade >= 3 and term not in HAEMATOLOGICAL
        serious |= term in (CRS_TERM, ICANS_TERM) and grade >= 2
        lo, hi = DLT_WINDOW
        dlt = grade >= 3 and related and term not in HAEMATOLOGICAL and lo <= onset <= hi
        events.append(
            {
                "subject": s.subject,
                "term": term,
                "soc": SOC[soc],
                "grade": int(grade),
                "onset_day": int(onset),
                "end_day": float(end) if end <= last else math.nan,
                "serious": bool(serious),
                "related": bool(related),
                "dlt": bool(dlt),
            }
        )

    crs_onset = int(rng.integers(1, 8))
    if s.crs_grade:
        duration = int(rng.integers(2, 5 + 2 * s.crs_grade))
        add(CRS_TERM, "immune", s.crs_grade, crs_onset, duration, True)
    if s.icans_grade:  # ICANS usually follows CRS by a few days
        onset = crs_onset + int(rng.integers(1, 6)) if s.crs_grade else int(rng.integers(3, 11))
        add(ICANS_TERM, "nervous", s.icans_grade, onset, int(rng.integers(2, 8)), True)
    if s.other_g3:
        term, soc = OTHER_G3_TERMS[rng.integers(len(OTHER_G3_TERMS))]
        add(term, soc, 3, int(rng.integers(3, 15)), int(rng.integers(4, 15)), True)
    for term, soc, p, grades, onsets, durations, related in BACKGROUND_EVENTS:
        if rng.uniform() >= p:
            continue
        grade = int(rng.choice(list(grades), p=list(grades.values())))
        onset = int(rng.integers(onsets[0], onsets[1] + 1))
        duration = int(rng.integers(durations[0], durations[1] + 1))
        if term == "Pyrexia" and s.crs_grade:
            continue  # fever is part of the CRS event
        add(term, soc, grade, onset, duration, related and onset >= 0)
    return events


# ============================================================================= RECIST self-check
def recist_check(lesions: pd.DataFrame, subjects: pd.DataFrame) -> None:
    """Assert that each subject's lesions reproduce its BOR and PD day under RECIST 1.1.

    Timepoint response (Eisenhauer 2009): target CR = every non-nodal target 0 mm and every
    nodal target < 10 mm; PD = sum >= 1.2 x nadir and >= nadir + 5 mm (nadir over baseline and
    earlier assessments); PR = sum <= 0.7 x baseline; else SD. Non-target: PD on any
    unequivocal_progression, CR when all absent. A new lesion is PD. Overall: PD if any
    component is PD; CR if target CR and non-target CR (or none); PR if target CR/PR otherwise;
    SD otherwise. Best overall response: CR/PR need a CR/PR(CR) timepoint >= 28 days later
    (before PD); an unconfirmed response or SD at any post-baseline assessment gives SD; PD if
    the first assessment is PD; NE without a post-baseline assessment.
    """
    for subject, group in lesions.groupby("subject", sort=True):
        info = subjects.loc[subjects["subject"] == subject].iloc[0]
        by_day = [g for _, g in group.groupby("day", sort=True)]
        baseline = by_day[0]
        base_sum = baseline.loc[baseline["kind"] == "target", "diameter_mm"].sum()
        assert np.isclose(base_sum, info["baseline_sld_mm"]), subject
        nadir = base_sum
        timepoints = []
        for assessment in by_day[1:]:
            day = int(assessment["day"].iloc[0])
            tgt = assessment.loc[assessment["kind"] == "target"]
            total = tgt["diameter_mm"].sum()
            target = target_response(tgt["diameter_mm"], tgt["nodal"], base_sum, nadir)
            nontarget = assessment.loc[assessment["kind"] == "nontarget", "status"]
            new = (assessment["kind"] == "new").any()
            if target == "PD" or new or (nontarget == "unequivocal_progression").any():
                overall = "PD"
            elif target == "CR":
                overall = "CR" if (nontarget == "absent").all() else "PR"
            else:
                overall = target
            nadir = min(nadir, total)
            timepoints.append((day, overall))
            if overall == "PD":
                break
        bor = _best_overall_response(timepoints)
        assert bor == info["bor"], f"{subject}: lesions give {bor}, table says {info['bor']}"
        pd_days = [d for d, r in timepoints if r == "PD"]
        if info["pfs_event"]:
            assert pd_days == [info["pfs_days"]], (
                f"{subject}: PD on {pd_days}, PFS {info['pfs_days']}"
            )
        else:
            assert not pd_days, f"{subject}: PD on {pd_days} but PFS is censored"
            if timepoints:  # censored at the last adequate assessment
                assert info["pfs_days"] == timepoints[-1][0], subject


def _best_overall_response(timepoints: list[tuple[int, str]]) -> str:
    if not timepoints:
        return "NE"
    responses = timepoints[:-1] if timepoints[-1][1] == "PD" else timepoints

    def confirmed(i: int, accepted: tuple[str, ...]) -> bool:
        return any(d >= responses[i][0] + 28 and r in accepted for d, r in responses[i + 1 :])

    if any(r == "CR" and confirmed(i, ("CR",)) for i, (_, r) in enumerate(responses)):
        return "CR"
    if any(r in ("CR", "PR") and confirmed(i, ("CR", "PR")) for i, (_, r) in enumerate(responses)):
        return "PR"
    if responses:
        return "SD"
    return "PD"


# ============================================================================= assembly
def simulate_study() -> dict[str, pd.DataFrame]:
    """Simulate the whole study and return its four tables (after self-checks)."""
    # 1. Who is enrolled at which dose, their kinetic parameters and visit days (no samples yet).
    grades: dict[str, tuple[int, int, bool]] = {}
    dlt = _toxicity_rule(grades)
    design = virtual_trial(MODEL, seed=SEED, dlt=dlt, assays=(), **TRIAL)
    subjects = enrol(design, grades)
    expansion = [s for s in subjects if s.cohort == "expansion"]
    withdrawn = expansion[WITHDRAWAL[0] - 1].subject

    # 2. Covariates, outcomes (from exposure), lesions and adverse events, per subject.
    lesion_rows, ae_rows, last_sample = [], [], {}
    for s in subjects:
        _demographics(s)
        visits = design.schedule.loc[design.schedule["subject"] == s.subject]
        s.covariates["screening_day"] = float(visits["time"].iloc[0])
        lesion_rows += _outcomes(s, WITHDRAWAL[1] if s.subject == withdrawn else None)
        last_sample[s.subject] = _last_sample(s, design.schedule)
        ae_rows += _adverse_events(s)

    # 3. The same trial (same streams: same subjects and visits), sampled until each subject's
    # follow-up ends; qPCR of the subjects with an assay background is simulated separately.
    regular = [s.subject for s in subjects if s.subject not in QPCR_BACKGROUND]
    assays = (dataclasses.replace(QPCR, subjects=regular), FLOW)
    trial = virtual_trial(MODEL, seed=SEED, dlt=dlt, assays=assays, dropout=last_sample, **TRIAL)

    subject_table = pd.DataFrame(
        [
            {
                "subject": s.subject,
                "dose": DOSE_LEVELS[s.dose_level],
                "dose_unit": DOSE_UNIT,
                "dose_level": s.dose_level,
                "cohort": s.cohort,
                "age": s.covariates["age"],
                "sex": s.covariates["sex"],
                "tumour_type": s.covariates["tumour_type"],
                "baseline_sld_mm": s.covariates["baseline_sld_mm"],
                "bor": s.outcome["bor"],
                "responder": s.outcome["responder"],
                "crs_grade": s.crs_grade,
                "icans_grade": s.icans_grade,
                "dlt": s.dlt,
                **{k: s.outcome[k] for k in ("pfs_days", "pfs_event", "os_days", "os_event")},
            }
            for s in subjects
        ]
    )
    lesions = pd.DataFrame(lesion_rows).loc[:, list(COLUMNS["lesions"])]
    adverse_events = pd.DataFrame(ae_rows)
    adverse_events = adverse_events.sort_values(
        ["subject", "onset_day", "term"], kind="stable"
    ).reset_index(drop=True)
    kinetics = _kinetics(trial, subjects)
    tables = {
        "kinetics": kinetics,
        "subjects": subject_table,
        "lesions": lesions,
        "adverse_events": adverse_events.loc[:, list(COLUMNS["adverse_events"])],
    }
    _self_check(tables, subjects)
    return tables


def _self_check(tables: dict[str, pd.DataFrame], subjects: list[Subject]) -> None:
    kin, sub, les, ae = (tables[k] for k in ("kinetics", "subjects", "lesions", "adverse_events"))
    recist_check(les, sub)
    assert sub["subject"].is_unique
    for name in ("kinetics", "lesions", "adverse_events"):
        assert set(tables[name]["subject"]) <= set(sub["subject"]), name
    assert set(kin["subject"]) == set(sub["subject"])
    # DLT flags: subject table == any AE flagged DLT
    ae_dlt = ae.groupby("subject")["dlt"].any().reindex(sub["subject"], fill_value=False)
    assert (ae_dlt.to_numpy() == sub["dlt"].to_numpy()).all(), "AE DLT flags disagree"
    worst = ae.groupby(["subject", "term"])["grade"].max().unstack(fill_value=0)
    for term, column in ((CRS_TERM, "crs_grade"), (ICANS_TERM, "icans_grade")):
        grades = worst[term] if term in worst else pd.Series(dtype=int)
        grades = grades.reindex(sub["subject"], fill_value=0)
        assert (grades.to_numpy() == sub[column].to_numpy()).all(), column
    # follow-up limits and survival ordering
    assert (sub["os_days"] >= sub["pfs_days"]).all()
    last = sub.set_index("subject")["os_days"]
    assert (kin.groupby("subject")["time"].max() <= last.reindex(kin["subject"].unique())).all()
    assert (ae["onset_day"].to_numpy() <= last.reindex(ae["subject"]).to_numpy()).all()
    # special subjects
    quantified = kin.loc[(kin["assay"] == "qpcr") & ~kin["blq"]].groupby("subject").size()
    for subject in NON_EXPANDERS:
        assert subject not in quantified.index, f"{subject} should be BLQ-only in qPCR"
    for subject in QPCR_BACKGROUND:
        pre = kin.loc[(kin["subject"] == subject) & (kin["assay"] == "qpcr") & (kin["time"] < 0)]
        assert len(pre) == 2 and not pre["blq"].any(), f"{subject}: baseline not quantifiable"


def _description(tables: dict[str, pd.DataFrame]) -> str:
    """One paragraph on the design, with the numbers of this realisation."""
    sub = tables["subjects"]
    groups = sub.groupby(["cohort", "dose_level"], sort=False).size()
    arms = "; ".join(f"{cohort} {level}: {n}" for (cohort, level), n in groups.items())
    levels = ", ".join(f"{name} = {dose:g}" for name, dose in DOSE_LEVELS.items())
    return (
        f"Phase 1, single-arm study of an NKG2D CAR-T product in NKG2DL+ solid tumours: "
        f"lymphodepletion, one infusion ({levels} x 10^6 CAR+ cells/kg), follow-up to day "
        f"{END_OF_STUDY}. 3+3 escalation, then an expansion cohort at the highest tolerated "
        f"level; {len(sub)} subjects ({arms}). Kinetics by qPCR (copies/ug gDNA, LLOQ "
        f"{QPCR.lloq:g}) and flow cytometry (CAR+ cells/uL, LLOQ {FLOW.lloq:g}) from the "
        f"Stein 2019 model with lowered typical values and a dose effect; response (RECIST "
        f"1.1), survival, CRS/ICANS and DLTs drawn from exposure through documented links."
    )


def _columns_json(tables: dict[str, pd.DataFrame]) -> str:
    columns = {
        name: {
            "file": f"{name}.csv",
            "rows": len(tables[name]),
            "columns": {
                column: {"role": role, "unit": unit, "description": description}
                for column, (role, unit, description) in spec.items()
            },
        }
        for name, spec in COLUMNS.items()
    }
    meta = {
        "title": "Synthetic phase 1 NKG2D CAR-T study (KD-025-like)",
        "synthetic": SYNTHETIC_NOTE.format(seed=SEED),
        "description": _description(tables),
        "generator": "data/make_example_study.py",
        "seed": SEED,
        "documentation": "data/README.md",
        "model": f"{MODEL.name} ({MODEL.citation}, doi:{MODEL.doi})",
        "tables": columns,
    }
    return json.dumps(meta, indent=2, ensure_ascii=False) + "\n"


def write_study(tables: dict[str, pd.DataFrame], out: Path) -> None:
    """Write the tables (stable float format, LF line endings) and columns.json to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(
            out / f"{name}.csv", index=False, float_format=FLOAT_FORMAT, lineterminator="\n"
        )
    (out / "columns.json").write_text(_columns_json(tables), encoding="utf-8", newline="\n")


def summary(tables: dict[str, pd.DataFrame]) -> str:
    """A few key numbers of the study, for the console."""
    kin, sub = tables["kinetics"], tables["subjects"]
    lines = ["subjects by cohort and dose level:"]
    counts = sub.groupby(["cohort", "dose_level"]).agg(n=("subject", "size"), dlt=("dlt", "sum"))
    lines.append(counts.to_string())
    by_assay = kin.groupby("assay").agg(samples=("blq", "size"), blq_pct=("blq", "mean"))
    by_assay["blq_pct"] = (100 * by_assay["blq_pct"]).round(1)
    lines += ["samples by assay:", by_assay.to_string()]
    lines.append(f"BOR: {sub['bor'].value_counts().to_dict()}; ORR {sub['responder'].mean():.0%}")
    lines.append(f"CRS grades: {sub['crs_grade'].value_counts().sort_index().to_dict()}")
    lines.append(f"ICANS grades: {sub['icans_grade'].value_counts().sort_index().to_dict()}")
    lines.append(f"DLTs: {int(sub['dlt'].sum())}; deaths: {int(sub['os_event'].sum())}")
    lines.append(f"lesion rows: {len(tables['lesions'])}; AE rows: {len(tables['adverse_events'])}")
    return "\n".join(lines)


def validate_with_readers(out: Path) -> None:
    """Read the written files back through cellkin's validating readers (raises DataError)."""
    from cellkin import io

    io.read_kinetics(out / "kinetics.csv")
    io.read_subjects(out / "subjects.csv")
    io.read_lesions(out / "lesions.csv")
    io.read_adverse_events(out / "adverse_events.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = parser.parse_args(argv)
    tables = simulate_study()
    write_study(tables, args.out)
    validate_with_readers(args.out)
    if not args.quiet:
        print(summary(tables))
        print(f"wrote {', '.join(tables)} and columns.json to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
