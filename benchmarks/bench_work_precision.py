"""Work-precision: cellkin's ``auto`` against numbalsoda and diffrax on every catalogue ODE model.

    python benchmarks/bench_work_precision.py                  # 10,000 patients, rtol 1e-4..1e-10
    python benchmarks/bench_work_precision.py --patients 500 --rtols 1e-5 1e-8
    python benchmarks/bench_work_precision.py --models kimmel2021 stein2019_ode
    python benchmarks/bench_work_precision.py --smoke          # CI-sized (50 patients, 2 rtols)
    python benchmarks/bench_work_precision.py --json out.json  # also write the records

**Models and patients.** Every catalogue ODE model: Kimmel 2021, León-Triana 2021,
Chaudhury 2020, CARTmath (HDLM-2 and Raji sets) and the Stein 2019 ODE. Each gets
``--patients`` virtual patients (10,000 by default) with log-normal variability (30%, a
fixed seed per model) on its rate, size and dose parameters (:data:`MODELS` lists them), and
60 output times over its natural horizon: 365 days for the clinical models, 158 days after
infusion for CARTmath HDLM-2 (day 200 of the mouse experiment) and 8 days for CARTmath Raji
(the published window).

**Methods, all in one run, on the same patients:**

* cellkin — ``model.with_options(rtol=..., atol=...).simulate_many(times, table)`` with
  ``method="auto"`` (Tsitouras 5(4) at rtol ≥ 1e-7, Verner 7(6) below, each switching to
  Rodas4 on stiff stretches; Rodas4 for the models declared stiff, the two CARTmath sets),
  all numba threads.
* numbalsoda 0.3.4 ``lsoda`` and ``dop853`` — each model's *own* numba right-hand side
  (``model.rhs``, the very function cellkin integrates) wrapped in a ``numba.cfunc`` of
  numbalsoda's signature, the patient's parameters (with the model's derived constants) and
  the phase index passed in ``data``; an ``njit(parallel=True)`` ``prange`` loop over the
  patients; across a breakpoint (Tmax of Chaudhury and Stein) each solver is restarted, one
  call per segment, exactly where cellkin restarts. Initial states and breakpoints come from
  the model's own kernels, the observed level from ``model.observe`` (inside the timing).
  ``dop853`` is an explicit method and is not run on the two stiff CARTmath sets (it needs
  ~10⁶ steps per patient there); ``lsoda`` switches to BDF itself.
* diffrax 0.7 (JAX, float64) — the equations transcribed to ``jax.numpy`` (functions
  ``_jax_*`` below; the run checks them against the reference), ``diffeqsolve`` with
  ``PIDController(rtol, atol)`` (its default I-controller), ``SaveAt(ts=times)``,
  ``max_steps`` 100,000, ``throw=False`` (failures are counted), one solve per segment across
  a breakpoint; ``jax.jit(jax.vmap(...))`` compiled ahead of time for each of two XLA host
  devices (``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``, one per core), each
  given half of the patients, the two run at once from two Python threads (XLA releases the
  GIL). ``jax.pmap`` and ``shard_map`` would be the natural choice, but with Kvaerno5 they fail
  inside lineax under jax 0.10 ("pytree does not match out_structure"); for Tsit5 the threads
  are as fast as ``pmap``. Solvers: ``Tsit5`` at every rtol and ``Dopri8`` from rtol 1e-7
  down on the non-stiff models; ``Kvaerno5`` (implicit) on the stiff CARTmath sets and on
  León-Triana, whose escaping-tumour patients turn stiff: there ``Tsit5``/``Dopri8`` fail
  them at ``max_steps``, and under ``vmap`` every patient of the batch waits for them (300
  patients took 17 s). Under ``vmap`` the patients of a device advance in lock-step, so
  every patient costs as many steps as the slowest of its half: both the mean and that
  maximum number of steps are reported. Kvaerno5 costs 5-200 ms per patient in lock-step, so
  it runs at every other rtol of the sweep (1e-4, 1e-6, 1e-8, 1e-10 by default) and on the
  first 100 patients only, its time scaled to all patients (a lower bound: the lock-step
  maximum only grows with the batch).

Compile time is excluded from every timing (a warm-up call first; diffrax compiled ahead
of time); each time is the median of ``--repeats`` calls (wall clock; a call longer than 2 s
is timed once).

**Tolerances.** rtol 1e-4, 1e-5, …, 1e-10 (``--rtols``); atol is the same scalar for every
method: the smallest entry of the model's ``default_atol`` times rtol/1e-6 (the model's
own choice at cellkin's default rtol, scaled with rtol as work-precision studies usually
do, so that the sweep sweeps the accuracy; ``--atol-scaling fixed`` keeps the default at
every rtol, where the curves of León-Triana flatten at the atol-limited error). numbalsoda
takes a single atol for all states; Kimmel's per-state default differs only on the normal T
cells, which never come near it.

**Accuracy.** A tight reference for every patient: numbalsoda ``dop853`` at rtol 1e-13 for
the non-stiff models and ``lsoda`` at rtol 1e-13 for the stiff ones (and for the patients
``dop853`` cannot finish within 10⁶ steps), both independent of cellkin, atol 1e-7 × the
model's default (below every run's atol; with the runs' atol, dop853's noise on a collapsed
León-Triana CAR-T level reached 1% of the error floor); cross-checked on the first 1,000
patients with cellkin ``auto`` (``vern7`` with switching, or ``rodas4``) at the same
tolerances (their disagreement, and how many patients one of them could not solve, is
printed). Without numbalsoda the reference is cellkin at those tolerances (said in the
output). Per patient, the
error is the largest relative error of the observed level over the output times, with a
floor of 1e-6 × the patient's peak (reference); a method's accuracy is the **p99 of that
over the patients** (a patient the method fails counts as an infinite error; failures are
also counted per method and rtol).

**Equal accuracy.** For each cellkin rtol, each peer's time is interpolated (log-log) along
its own rtol sweep at cellkin's p99 error — on the first segment of the sweep that brackets
it; no extrapolation: where cellkin's error lies outside a peer's range there is no ratio and
the notes say which side. ``ratio`` = peer time / cellkin time; against numbalsoda the
*better* (faster) of ``lsoda`` and ``dop853`` is taken, against diffrax the better of its
solvers. Goals (issue #19): ≥ 2× the best numbalsoda solver and ≥ 10× diffrax (on CPU) on every
model over the whole range; the summary table gives the worst and best ratio per model.

**Work per patient.** Right-hand-side evaluations per patient (mean over a subset of
``--count`` patients): cellkin and numbalsoda through counting copies of the model's
right-hand side (cellkin via :func:`cellkin.models.ode.solve`, the same integration code as
``simulate_many``; Jacobian evaluations of Rodas4 counted separately), diffrax from its step
count (stages per step × steps; for Kvaerno5 steps only). Cost per evaluation = CPU time
(wall × cores) / (patients × evaluations).

**Output.** A Markdown table of every run (method × rtol: time, p99 and max error, failures,
evaluations), the equal-accuracy ratios per model × rtol, and a summary per model; with
``--plots DIR`` (default ``benchmarks/results`` in full mode, none in smoke mode) a time vs
error plot per model, ``work_precision_<model>.png``. Records (``--json``): one per model ×
cellkin rtol × peer family (best numbalsoda, best diffrax), ``peer_s`` the interpolated peer
time; with no peer installed one record per model × rtol with ``peer`` None.

``--smoke``: 50 patients per model, rtol 1e-6 and 1e-8, the peers (when installed) on
Kimmel 2021 only; evaluations counted on the first model only.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from cellkin import models
from cellkin.models.ode import SolverOptions, solve


def _usable_cores() -> int:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(numba.config.NUMBA_NUM_THREADS, usable or 1))


CORES = _usable_cores()
# One XLA host device per core, set before jax is imported (diffrax runs pmap over them).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={CORES}"
    ).strip()

try:  # optional peers: never cellkin dependencies (CI runs without them)
    import numbalsoda
except ImportError:  # pragma: no cover - depends on the environment
    numbalsoda = None
try:
    import diffrax
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - depends on the environment
    jax = jnp = diffrax = None

RTOLS = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)
REF_RTOL = 1e-13
REF_ATOL = 1e-7  # × min(default_atol): below every run's atol (the smallest is 1e-4 × it)
STIFF_DIFFRAX_SUBSET = 100  # Kvaerno5 (~5-200 ms per patient in lock-step): timed on a subset
N_TIMES = 60
FLOOR = 1e-6  # error floor, × each patient's peak
MAX_STEPS = 100_000
DOPRI8_FROM = 1e-7  # diffrax Dopri8 at rtol <= this
GOALS = {"numbalsoda": 2.0, "diffrax": 10.0}


# ----------------------------------------------------------------------------- jax models
# Transcriptions of the catalogue equations (cellkin/models/*.py) for diffrax: f(t, y, p,
# phase) with p the declared parameters (not the derived constants) and a static phase.


def _jax_kimmel(t, y, p, phase):
    k_n, k_c, r_n, rho_c, a, b, r_b, gamma_b, k_b = (p[i] for i in range(9))
    normal, car_t, tumour = y[0], y[1], y[2]
    total = jnp.maximum(normal + car_t, 1e-300)
    shortfall = (total - k_n) ** 2
    r_c = rho_c + b * shortfall / (a * total * total + shortfall)
    log_total = jnp.log(total / k_n)
    return jnp.stack([
        -r_n * normal * log_total,
        -r_c * car_t * (log_total + jnp.log(k_n / k_c)),
        r_b * tumour - gamma_b * tumour * car_t / (k_b + car_t),
    ])  # fmt: skip


def _jax_leon_triana(t, y, p, phase):
    rho_c, g_t, alpha_1, g_c, tau_c, rho_t, alpha_2 = (p[i] for i in range(7))
    c, tumour = y[0], y[1]
    return jnp.stack([
        rho_c * c * tumour / (g_t + tumour) - alpha_1 * c * tumour / (g_c + c) - c / tau_c,
        rho_t * tumour - alpha_2 * c * tumour,
    ])  # fmt: skip


def _jax_chaudhury(t, y, p, phase):
    rho, k_e, ec50_rho, g, d, k_ep, beta, u_crit, u_max, h, ec50_d = (p[i] for i in range(11))
    ce, cp, u = y[0], y[1], y[2]
    if phase == 0:
        d_ce, d_cp = rho * ce * u / (ec50_rho + ce + u), 0.0 * cp
    else:
        d_ce, d_cp = -(k_ep + k_e) * ce, k_ep * ce - beta * cp
    safe = jnp.where(u > 0.0, u, 1.0)
    f_cure = 1.0 / (1.0 + (u_crit / safe) ** h)
    growth = jnp.where(u > 0.0, f_cure * g * safe * jnp.log(u_max / safe) / jnp.log(u_max), 0.0)
    return jnp.stack([d_ce, d_cp, growth - d * ce * u / (ec50_d + ce + u)])


def _jax_cartmath(t, y, p, phase):
    phi, rho, mu_t, eps, mu_m, theta, alpha, r, gamma = (p[i] for i in range(9))
    b = p[12] if p.shape[0] > 12 else 0.0  # the Raji set has no capacity
    ct, cm, tumour = y[0], y[1], y[2]
    return jnp.stack([
        (phi - rho - mu_t) * ct + theta * tumour * cm - alpha * tumour * ct,
        eps * rho * ct - theta * tumour * cm - mu_m * cm,
        r * tumour * (1.0 - b * tumour) - gamma * tumour * ct,
    ])  # fmt: skip


def _jax_stein(t, y, p, phase):
    tmax, foldx, alpha, fb, beta = p[1], p[2], p[3], p[4], p[5]
    if phase == 0:
        return jnp.stack([jnp.log(foldx) / tmax * y[0], 0.0 * y[1]])
    return jnp.stack([-alpha * y[0], fb * (alpha - beta) * y[0] - beta * y[1]])


@dataclass(frozen=True)
class Spec:
    """A catalogue model in this benchmark."""

    name: str
    label: str
    horizon: float
    varied: tuple[str, ...]
    seed: int
    jax_rhs: Callable
    jax_observe: Callable  # (states (n_times, n_states), p) -> levels
    diffrax: tuple[str, ...] = ("tsit5", "dopri8")  # solvers run (dopri8 from DOPRI8_FROM)


MODELS = (
    Spec("kimmel2021", "Kimmel 2021", 365.0,
         ("k_c", "r_n", "rho_c", "a", "b", "gamma_b", "k_b", "n0", "dose", "b0"), 1,
         _jax_kimmel, lambda ys, p: ys[:, 1]),
    Spec("leon_triana2021", "León-Triana 2021", 365.0,
         ("rho_c", "g_t", "alpha_1", "g_c", "tau_c", "rho_t", "alpha_2", "dose", "tumour0"), 2,
         _jax_leon_triana, lambda ys, p: ys[:, 0] / p[9], ("kvaerno5",)),
    Spec("chaudhury2020", "Chaudhury 2020", 365.0,
         ("rho", "k_e", "g", "d", "k_ep", "beta", "ec50_rho", "ec50_d", "tmax", "ce0", "u0"), 3,
         _jax_chaudhury, lambda ys, p: ys[:, 0] + ys[:, 1]),
    Spec("cartmath_hdlm2", "CARTmath HDLM-2", 158.0,
         ("phi", "alpha", "gamma", "theta", "r", "mu_m", "dose", "tumour0"), 4,
         _jax_cartmath, lambda ys, p: jnp.maximum(ys[:, 0] + ys[:, 1], 0.0), ("kvaerno5",)),
    Spec("cartmath_raji", "CARTmath Raji", 8.0,
         ("phi", "alpha", "gamma", "theta", "r", "dose", "tumour0"), 5,
         _jax_cartmath, lambda ys, p: jnp.maximum(ys[:, 0] + ys[:, 1], 0.0), ("kvaerno5",)),
    Spec("stein2019_ode", "Stein 2019 ODE", 365.0,
         ("cmax", "tmax", "foldx", "alpha", "fb", "beta"), 6,
         _jax_stein, lambda ys, p: ys[:, 0] + ys[:, 1]),
)  # fmt: skip


# ----------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """One model's population, prepared once for every method."""

    spec: Spec
    model: Any
    times: np.ndarray
    table: np.ndarray  # (n, n_params): declared parameters
    kvec: np.ndarray  # (n, n_kernel): parameters and derived constants
    y0: np.ndarray  # (n, n_states)
    bps: np.ndarray  # (n, max(1, max_breakpoints)), sorted
    nbp: np.ndarray  # (n,)
    atol_unit: float  # min(default_atol): every method's atol at rtol 1e-6
    scale_atol: bool = True  # atol_unit × rtol / 1e-6 (--atol-scaling fixed: atol_unit)

    def atol(self, rtol: float) -> float:
        return self.atol_unit * (rtol / 1e-6 if self.scale_atol else 1.0)

    @property
    def n(self) -> int:
        return self.table.shape[0]


def population(spec: Spec, n: int) -> Problem:
    """``n`` patients: the defaults, ``spec.varied`` × exp(0.3 z), within the parameter bounds."""
    model = models.get(spec.name)
    rng = np.random.default_rng(spec.seed)
    table = np.tile(model.param_vector(), (n, 1))
    for param in model.params:
        if param.name in spec.varied:
            j = model.param_names.index(param.name)
            table[:, j] *= np.exp(0.3 * rng.standard_normal(n))
            table[:, j] = np.clip(table[:, j], param.lower, param.upper)
    n_kernel = table.shape[1] + len(model.derived_names)
    kvec, y0 = np.zeros((n, n_kernel)), np.zeros((n, model.n_states))
    max_bp = max(1, model.max_breakpoints)
    bps, nbp = np.full((n, max_bp), np.inf), np.zeros(n, dtype=np.int64)
    for i in range(n):
        kvec[i, : table.shape[1]] = table[i]
        row = kvec[i]
        if model.derive is not None and int(model.derive(row)) != 0:
            raise RuntimeError(f"{spec.name}: derive failed for patient {i}")
        if int(model.initial_state(row, y0[i])) != 0:
            raise RuntimeError(f"{spec.name}: initial_state failed for patient {i}")
        if model.breakpoints is not None:
            out = np.empty(max_bp)
            count = int(model.breakpoints(row, out))
            bps[i, :count], nbp[i] = np.sort(out[:count]), count
    return Problem(spec, model, np.linspace(0.0, spec.horizon, N_TIMES), table, kvec, y0, bps,
                   nbp, float(np.min(model.default_atol)))  # fmt: skip


def subset(problem: Problem, m: int) -> Problem:
    """The first ``m`` patients."""
    return Problem(problem.spec, problem.model, problem.times, problem.table[:m],
                   problem.kvec[:m], problem.y0[:m], problem.bps[:m], problem.nbp[:m],
                   problem.atol_unit, problem.scale_atol)  # fmt: skip


# ----------------------------------------------------------------------------- accuracy


def patient_errors(levels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per patient: max over times of |a − b| / (|b| + 1e-6 × peak); inf where ``a`` failed."""
    floor = FLOOR * np.nanmax(np.abs(reference), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(levels - reference) / (np.abs(reference) + floor)
    errors = np.max(np.where(np.isfinite(rel), rel, np.inf), axis=1)
    return errors


def p99(errors: np.ndarray) -> float:
    return float(np.quantile(errors, 0.99, method="higher")) if errors.size else math.nan


# ----------------------------------------------------------------------------- timing


LONG_CALL = 2.0  # seconds: a call this long is timed once


def timed(function: Callable[[], Any], repeats: int, warm: bool = True) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``repeats`` calls and the last result.

    ``warm``: one untimed call first (compilation, thread start-up); a call longer than
    :data:`LONG_CALL` is not repeated.
    """
    result = function() if warm else None
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if walls[-1] > LONG_CALL:
            break
    return statistics.median(walls), statistics.median(cpus), result


# ----------------------------------------------------------------------------- cellkin


def cellkin_levels(problem: Problem, rtol: float, method: str = "auto") -> np.ndarray:
    model = problem.model.with_options(rtol=rtol, atol=problem.atol(rtol), method=method,
                                       max_steps=MAX_STEPS)  # fmt: skip
    return model.simulate_many(problem.times, problem.table)


@functools.cache
def _counting_kernels(name: str) -> tuple[Any, Any]:
    """A model's rhs and Jacobian that count their calls in the two entries after ``p``."""
    model = models.get(name)
    n_kernel = len(model.param_names) + len(model.derived_names)
    rhs, jacobian = model.rhs, model.jacobian

    @numba.njit
    def counted_rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
        p[n_kernel] += 1.0
        rhs(t, y, p[:n_kernel], phase, dydt)

    counted_jac = None
    if jacobian is not None:

        @numba.njit
        def counted_jac(t, y, p, phase, jac):  # pragma: no cover - compiled
            p[n_kernel + 1] += 1.0
            jacobian(t, y, p[:n_kernel], phase, jac)

    return counted_rhs, counted_jac


def cellkin_evaluations(problem: Problem, rtol: float) -> tuple[float, float]:
    """Mean right-hand-side and Jacobian evaluations per patient (cellkin, ``auto``)."""
    model = problem.model
    rhs, jac = _counting_kernels(problem.spec.name)
    method = "rodas4" if model.stiff else "auto"
    options = SolverOptions(rtol=rtol, atol=problem.atol(rtol), method=method,
                            max_steps=MAX_STEPS)  # fmt: skip
    counts = []
    for i in range(problem.n):
        p = np.concatenate([problem.kvec[i], [0.0, 0.0]])
        solve(rhs, problem.times, problem.y0[i], p, jac=jac,
              breakpoints=problem.bps[i, : problem.nbp[i]], options=options,
              errors="coerce")  # fmt: skip
        counts.append(p[-2:])
    return tuple(np.mean(counts, axis=0))


# ----------------------------------------------------------------------------- numbalsoda


@functools.cache
def _numbalsoda_cfuncs(name: str) -> tuple[int, int]:
    """Addresses of the model's own rhs as a numbalsoda cfunc: plain, and counting calls."""
    model = models.get(name)
    n_kernel = len(model.param_names) + len(model.derived_names)
    n_states, rhs = model.n_states, model.rhs

    @numba.cfunc(numbalsoda.lsoda_sig)
    def plain(t, u, du, data):  # pragma: no cover - compiled
        y, dydt = numba.carray(u, (n_states,)), numba.carray(du, (n_states,))
        rhs(t, y, numba.carray(data, (n_kernel,)), int(data[n_kernel]), dydt)

    @numba.cfunc(numbalsoda.lsoda_sig)
    def counted(t, u, du, data):  # pragma: no cover - compiled
        data[n_kernel + 1] += 1.0
        y, dydt = numba.carray(u, (n_states,)), numba.carray(du, (n_states,))
        rhs(t, y, numba.carray(data, (n_kernel,)), int(data[n_kernel]), dydt)

    _numbalsoda_cfuncs.keep = (*getattr(_numbalsoda_cfuncs, "keep", ()), plain, counted)
    return plain.address, counted.address


@functools.cache
def _numbalsoda_loop() -> Callable:
    """The njit(parallel=True) loop over patients, segment by segment across breakpoints."""
    lsoda, dop853 = numbalsoda.lsoda, numbalsoda.dop853

    @numba.njit(parallel=True)
    def run(which, funcptr, kvec, y0s, bps, nbps, t_out, rtol, atol, mxstep, states, ok,
            evals):  # pragma: no cover - compiled  # fmt: skip
        n, n_kernel = kvec.shape
        n_out = t_out.shape[0]
        t_last = t_out[n_out - 1]
        for i in numba.prange(n):
            data = np.zeros(n_kernel + 2)
            data[:n_kernel] = kvec[i]
            y = y0s[i].copy()
            t, j, k, phase, good = 0.0, 0, 0, 0, True
            while j < n_out and t_out[j] <= t:
                states[i, j, :] = y
                j += 1
            while good and j < n_out:
                while k < nbps[i] and bps[i, k] <= t:
                    phase, k = phase + 1, k + 1
                end = bps[i, k] if k < nbps[i] and bps[i, k] < t_last else t_last
                m = j
                while m < n_out and t_out[m] <= end:
                    m += 1
                extra = 1 if m == j or t_out[m - 1] < end else 0
                t_eval = np.empty(1 + m - j + extra)
                t_eval[0] = t
                for q in range(j, m):
                    t_eval[1 + q - j] = t_out[q]
                if extra:
                    t_eval[t_eval.shape[0] - 1] = end
                data[n_kernel] = phase
                if which == 0:
                    usol, success = lsoda(funcptr, y, t_eval, data, rtol, atol, mxstep)
                else:
                    usol, success = dop853(funcptr, y, t_eval, data, rtol, atol, mxstep)
                if not success:
                    good = False
                    break
                for q in range(j, m):
                    states[i, q, :] = usol[1 + q - j]
                y = usol[t_eval.shape[0] - 1].copy()
                j, t = m, end
            ok[i] = good
            evals[i] = data[n_kernel + 1]
            if not good:
                states[i, :, :] = np.nan

    return run


@numba.njit
def _observe_all(observe, states, kvec, ok, levels):  # pragma: no cover - compiled
    for i in range(states.shape[0]):
        for j in range(states.shape[1]):
            levels[i, j] = observe(states[i, j], kvec[i]) if ok[i] else np.nan


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence the C library's own prints (dop853: "the problem seems to become stiff")."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, null = (os.dup(1), os.dup(2)), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # the C library's buffered prints go to /dev/null too
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def numbalsoda_levels(problem: Problem, which: str, rtol: float, atol: float | None = None,
                      mxstep: int = MAX_STEPS, count: bool = False):  # fmt: skip
    """Levels (n, n_times) and, with ``count``, the rhs evaluations per patient."""
    plain, counted = _numbalsoda_cfuncs(problem.spec.name)
    n, n_out = problem.n, problem.times.size
    states = np.empty((n, n_out, problem.model.n_states))
    ok, evals = np.zeros(n, dtype=np.bool_), np.zeros(n)
    with _quiet_stdout():
        _numbalsoda_loop()(0 if which == "lsoda" else 1, counted if count else plain,
                           problem.kvec, problem.y0, problem.bps, problem.nbp, problem.times,
                           rtol, problem.atol(rtol) if atol is None else atol, mxstep, states,
                           ok, evals)  # fmt: skip
    levels = np.empty((n, n_out))
    _observe_all(problem.model.observe, states, problem.kvec, ok, levels)
    return (levels, evals) if count else levels


# ----------------------------------------------------------------------------- diffrax

DIFFRAX_STAGES = {"tsit5": 6, "dopri8": 13, "kvaerno5": None}  # rhs calls per step (FSAL)


@functools.cache
def _diffrax_function(name: str, solver_name: str, horizon: float) -> Callable:
    """jit of vmap over patients: (p, y0, bp, rtol, atol) -> levels, ok, steps."""
    spec = next(s for s in MODELS if s.name == name)
    has_bp = models.get(name).max_breakpoints > 0
    solver = {"tsit5": diffrax.Tsit5, "dopri8": diffrax.Dopri8,
              "kvaerno5": diffrax.Kvaerno5}[solver_name]()  # fmt: skip
    terms = [diffrax.ODETerm(lambda t, y, p, k=k: spec.jax_rhs(t, y, p, k)) for k in (0, 1)]
    ts = jnp.linspace(0.0, horizon, N_TIMES)
    ok_code = diffrax.RESULTS.successful

    def segment(phase, t0, t1, y0, p, save, rtol, atol):
        return diffrax.diffeqsolve(
            terms[phase], solver, t0, t1, None, y0, args=p, saveat=diffrax.SaveAt(ts=save),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=MAX_STEPS, throw=False,
        )  # fmt: skip

    def one(p, y0, bp, rtol, atol):
        if not has_bp:
            sol = segment(0, 0.0, horizon, y0, p, ts, rtol, atol)
            ys, ok, steps = sol.ys, sol.result == ok_code, sol.stats["num_steps"]
        else:
            first = segment(0, 0.0, bp, y0, p, jnp.clip(ts, 0.0, bp), rtol, atol)
            second = segment(1, bp, horizon, first.ys[-1], p, jnp.clip(ts, bp, horizon), rtol,
                             atol)  # fmt: skip
            ys = jnp.where((ts <= bp)[:, None], first.ys, second.ys)
            ok = (first.result == ok_code) & (second.result == ok_code)
            steps = first.stats["num_steps"] + second.stats["num_steps"]
        return spec.jax_observe(ys, p), ok, steps

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, None)))


_DIFFRAX_READY: dict[tuple, tuple] = {}


def _diffrax_ready(problem: Problem, solver_name: str) -> tuple[list, list, list]:
    """Per host device: its patients, their inputs (placed there) and the compiled function.

    Compiled ahead of time (``lower().compile()``), so no timed call compiles. One device
    per core; the devices run in parallel from one Python thread each (``pmap`` and
    ``shard_map`` of Kvaerno5 fail in lineax under jax 0.10: "pytree does not match
    out_structure").
    """
    key = (problem.spec.name, solver_name, problem.n)
    if key not in _DIFFRAX_READY:
        function = _diffrax_function(problem.spec.name, solver_name, problem.spec.horizon)
        devices = jax.local_devices()
        parts = [part for part in np.array_split(np.arange(problem.n), len(devices)) if part.size]
        inputs, compiled = [], []
        for part, device in zip(parts, devices, strict=False):
            args = tuple(jax.device_put(a, device) for a in
                         (problem.table[part], problem.y0[part], problem.bps[part, 0]))  # fmt: skip
            inputs.append(args)
            compiled.append(function.lower(*args, 1e-6, 1e-6).compile())
        for other in [k for k in _DIFFRAX_READY if k[0] != key[0]]:
            del _DIFFRAX_READY[other]  # keep one model's device arrays at a time
        _DIFFRAX_READY[key] = (parts, inputs, compiled)
    return _DIFFRAX_READY[key]


@functools.cache
def _threads(count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(count)


def diffrax_levels(problem: Problem, solver_name: str, rtol: float):
    """Levels (n, n_times), success flags, steps per patient and lock-step iterations."""
    parts, inputs, compiled = _diffrax_ready(problem, solver_name)
    atol = problem.atol(rtol)

    def run(k):
        out = compiled[k](*inputs[k], rtol, atol)
        return tuple(np.asarray(x) for x in out)

    results = list(_threads(len(parts)).map(run, range(len(parts))))
    levels = np.empty((problem.n, N_TIMES))
    ok, steps = np.zeros(problem.n, dtype=bool), np.zeros(problem.n)
    for part, (lv, good, st) in zip(parts, results, strict=True):
        levels[part], ok[part], steps[part] = lv, good, st
    levels[~ok] = np.nan
    lockstep = float(np.mean([st.max() for _, _, st in results]))  # iterations per device
    return levels, ok, steps, lockstep


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One method at one rtol on one model."""

    method: str  # e.g. "cellkin auto", "numbalsoda lsoda", "diffrax tsit5"
    family: str  # cellkin, numbalsoda, diffrax
    rtol: float
    wall: float
    cpu: float
    error_p99: float
    error_max: float
    failed: int
    evals: float | None = None  # rhs evaluations per patient (mean)
    evals_note: str = ""

    def ns_per_eval(self, n: int) -> float | None:
        if not self.evals:
            return None
        return self.wall * CORES / (n * self.evals) * 1e9


def peers_for(problem: Problem, use_peers: bool) -> list[tuple[str, str]]:
    """The (family, solver) pairs run on this model."""
    if not use_peers:
        return []
    stiff = problem.model.stiff
    pairs = []
    if numbalsoda is not None:
        pairs += [("numbalsoda", "lsoda")] + ([] if stiff else [("numbalsoda", "dop853")])
    if jax is not None:
        pairs += [("diffrax", solver) for solver in problem.spec.diffrax]
    return pairs


def reference(problem: Problem, use_peers: bool, check: int) -> tuple[np.ndarray, str]:
    """Tight levels for every patient, and a line saying what they are and how they agree."""
    cellkin_method = problem.model.with_options(rtol=REF_RTOL).method  # auto-vern7 or rodas4
    if not (use_peers and numbalsoda is not None):
        tight = subset(problem, problem.n)
        tight.atol_unit, tight.scale_atol = problem.atol_unit * REF_ATOL, False
        levels = cellkin_levels(tight, REF_RTOL)
        return levels, (f"reference: cellkin {cellkin_method} at rtol {REF_RTOL:g}, atol "
                        f"{tight.atol(REF_RTOL):.0e} (no numbalsoda)")  # fmt: skip
    tight = subset(problem, problem.n)
    tight.atol_unit, tight.scale_atol = problem.atol_unit * REF_ATOL, False
    atol = tight.atol(REF_RTOL)
    start = time.perf_counter()
    lsoda_patients = 0
    if problem.model.stiff:
        levels = numbalsoda_levels(problem, "lsoda", REF_RTOL, atol, 10**6)
        label = "numbalsoda lsoda"
    else:
        levels = numbalsoda_levels(problem, "dop853", REF_RTOL, atol, 10**6)
        failed = np.flatnonzero(~np.isfinite(levels).all(axis=1))
        if failed.size:  # stiff patients (León-Triana's escaping tumours): LSODA (BDF) there
            sub = Problem(problem.spec, problem.model, problem.times, problem.table[failed],
                          problem.kvec[failed], problem.y0[failed], problem.bps[failed],
                          problem.nbp[failed], problem.atol_unit,
                          problem.scale_atol)  # fmt: skip
            levels[failed] = numbalsoda_levels(sub, "lsoda", REF_RTOL, atol, 10**6)
            lsoda_patients = failed.size
        label = "numbalsoda dop853" + (
            f" (lsoda for the {lsoda_patients} patients dop853 cannot finish)"
            if lsoda_patients else ""
        )  # fmt: skip
    seconds = time.perf_counter() - start
    m = min(check, problem.n)
    other = cellkin_levels(subset(tight, m), REF_RTOL)
    mine, theirs = np.isfinite(levels[:m]).all(axis=1), np.isfinite(other).all(axis=1)
    diff = patient_errors(other[mine & theirs], levels[:m][mine & theirs])
    unsolved = int((~mine).sum() + (~theirs).sum())
    line = (
        f"reference: {label} at rtol {REF_RTOL:g}, atol {atol:.0e} ({seconds:.1f} s, "
        f"{int((~np.isfinite(levels).all(axis=1)).sum())} unsolved, left out of every error); "
        f"cellkin {cellkin_method} at rtol {REF_RTOL:g} on {m} patients differs by "
        f"p99 {p99(diff):.1e}, max {diff.max(initial=0.0):.1e}"
        + (f" ({unsolved} unsolved by one of the two)" if unsolved else "")
    )
    return levels, line


def sweep(problem: Problem, rtols: Sequence[float], pairs: list[tuple[str, str]],
          ref: np.ndarray, repeats: int, count: int, smoke: bool = False) -> list[Run]:  # fmt: skip
    """Every method at every rtol: time, accuracy, failures, evaluations."""
    valid = np.isfinite(ref).all(axis=1)
    runs: list[Run] = []

    def score(levels):
        m = levels.shape[0]  # a subset: the first m patients
        errors = patient_errors(levels[valid[:m]], ref[:m][valid[:m]])
        failed = int((~np.isfinite(levels).all(axis=1)).sum())
        return p99(errors), float(errors.max(initial=0.0)), failed

    counted = subset(problem, min(count, problem.n))
    for index, rtol in enumerate(rtols):
        warm = index == 0  # later rtols reuse the compiled code (rtol is an argument)
        wall, cpu, levels = timed(lambda r=rtol: cellkin_levels(problem, r), repeats, warm)
        run = Run("cellkin auto", "cellkin", rtol, wall, cpu, *score(levels))
        if count:
            rhs_calls, jac_calls = cellkin_evaluations(counted, rtol)
            run.evals = rhs_calls
            integrator = problem.model.with_options(rtol=rtol).method
            run.evals_note = integrator + (f", {jac_calls:.0f} Jacobians" if jac_calls else "")
        runs.append(run)
        for family, solver in pairs:
            if (
                family == "diffrax"
                and solver == "dopri8"
                and (rtol > DOPRI8_FROM * 1.0001 or smoke)
            ):
                continue
            if solver == "kvaerno5" and len(rtols) > 2 and index % 2:
                continue  # ~5 ms per patient: every other rtol of the sweep
            warm = not any(r.method == f"{family} {solver}" for r in runs)
            if family == "numbalsoda":
                wall, cpu, levels = timed(
                    lambda r=rtol, s=solver: numbalsoda_levels(problem, s, r), repeats, warm
                )
                run = Run(f"numbalsoda {solver}", family, rtol, wall, cpu, *score(levels))
                if count:
                    run.evals = float(numbalsoda_levels(counted, solver, rtol, count=True)[1]
                                      .mean())  # fmt: skip
            else:
                part = problem
                if solver == "kvaerno5" and problem.n > STIFF_DIFFRAX_SUBSET:
                    part = subset(problem, STIFF_DIFFRAX_SUBSET)
                _diffrax_ready(part, solver)  # compile outside the timing
                wall, cpu, result = timed(
                    lambda r=rtol, s=solver, q=part: diffrax_levels(q, s, r), repeats, False
                )  # compiled ahead of time
                levels, _, steps, lockstep = result
                scale = problem.n / part.n  # per patient, extrapolated to all (a lower bound)
                run = Run(f"diffrax {solver}", family, rtol, wall * scale, cpu * scale,
                          *score(levels))  # fmt: skip
                stages = DIFFRAX_STAGES[solver]
                if stages:
                    run.evals = lockstep * stages
                run.evals_note = f"steps mean {steps.mean():.0f}, lock-step {lockstep:.0f}"
                if part is not problem:
                    run.evals_note += (f"; timed on {part.n} patients, × {scale:g} (errors and "
                                       f"failures on those {part.n})")  # fmt: skip
            runs.append(run)
    return runs


# ----------------------------------------------------------------------------- equal accuracy


def time_at(runs: Sequence[Run], error: float) -> tuple[float | None, str]:
    """Time interpolated log-log along the sweep at ``error`` (None and why, outside it)."""
    points = [(r.error_p99, r.wall) for r in sorted(runs, key=lambda r: -r.rtol)
              if math.isfinite(r.error_p99) and r.error_p99 > 0]  # fmt: skip
    if not points:
        return None, "no usable run"
    for (e1, t1), (e2, t2) in itertools.pairwise(points):
        if min(e1, e2) <= error <= max(e1, e2):
            if e1 == e2:
                return min(t1, t2), ""
            w = (math.log(error) - math.log(e1)) / (math.log(e2) - math.log(e1))
            return math.exp(math.log(t1) + w * (math.log(t2) - math.log(t1))), ""
    if len(points) == 1 and points[0][0] == error:
        return points[0][1], ""
    tightest, loosest = min(points), max(points)
    if error < tightest[0]:
        return None, f"more accurate than its tightest run ({tightest[0]:.1e})"
    return None, f"less accurate than its loosest run ({loosest[0]:.1e})"


def time_bound(runs: Sequence[Run], error: float) -> tuple[str, float] | None:
    """Outside a method's range: ("≥", time of its most accurate run) when ``error`` is
    below all its errors, ("≤", time of its least accurate run) when above."""
    points = [(r.error_p99, r.wall) for r in runs if math.isfinite(r.error_p99)]
    if not points:
        return None
    if error < min(points)[0]:
        return "≥", min(points)[1]
    if error > max(points)[0]:
        return "≤", max(points)[1]
    return None


def _by_method(runs: Sequence[Run], family: str) -> dict[str, list[Run]]:
    """The runs of ``family``'s solvers, by solver."""
    by_method: dict[str, list[Run]] = {}
    for run in runs:
        if run.family == family:
            by_method.setdefault(run.method, []).append(run)
    return by_method


def equal_accuracy(runs: Sequence[Run], family: str, target: float) -> tuple[float | None, str]:
    """The best (fastest) solver of ``family`` at error ``target``, and a note."""
    by_method = _by_method(runs, family)
    best, best_method, reasons = None, "", []
    for method, series in by_method.items():
        seconds, why = time_at(series, target)
        if seconds is None:
            reasons.append(f"{method}: {why}")
        elif best is None or seconds < best:
            best, best_method = seconds, method
    if best is None:
        return None, "; ".join(reasons)
    return best, best_method


def family_bound(runs: Sequence[Run], family: str, target: float) -> tuple[str, float] | None:
    """Where no solver of ``family`` reaches ``target`` inside its range: a bound on the best
    one's time (≤ the least accurate run of a solver that is more accurate everywhere, else ≥
    the fastest of the most accurate runs)."""
    by_method = _by_method(runs, family)
    bounds = [b for b in (time_bound(series, target) for series in by_method.values()) if b]
    upper = [seconds for kind, seconds in bounds if kind == "≤"]
    if upper:
        return "≤", min(upper)
    lower = [seconds for kind, seconds in bounds if kind == "≥"]
    return ("≥", min(lower)) if lower and len(lower) == len(by_method) else None


# ----------------------------------------------------------------------------- output


def records_for(problem: Problem, runs: Sequence[Run], ref_line: str, load: str,
                repeats: int) -> list[dict[str, Any]]:  # fmt: skip
    spec, n = problem.spec, problem.n
    families = sorted({r.family for r in runs} - {"cellkin"})
    records = []
    for run in (r for r in runs if r.family == "cellkin"):
        base = {
            "benchmark": "work_precision",
            "workload": f"{spec.label}, rtol {run.rtol:.0e}, {N_TIMES} times, {spec.horizon:g} d",
            "n": n,
            "cores": CORES,
            "cellkin_s": run.wall,
            "throughput": n / run.wall,
            "throughput_unit": "patients/s",
            "repeats": repeats,
            "model": spec.name,
            "rtol": run.rtol,
            "cellkin_error_p99": run.error_p99,
            "cellkin_failed": run.failed,
            "cellkin_evals": run.evals,
        }
        own = (f"cellkin auto ({run.evals_note or problem.model.with_options(rtol=run.rtol).method}"
               f") p99 error {run.error_p99:.1e}, {run.failed} failed")  # fmt: skip
        if not families:
            records.append(base | {"peer": None, "peer_s": None, "ratio": None, "goal": None,
                                   "met": None, "notes": f"{own}; no peer run; {ref_line}; "
                                                         f"{load}"})  # fmt: skip
            continue
        for family in families:
            peer_s, which = equal_accuracy(runs, family, run.error_p99)
            ratio = None if peer_s is None else peer_s / run.wall
            bound = None if peer_s is not None else family_bound(runs, family, run.error_p99)
            if bound is not None:
                which += f"; ratio {bound[0]} {bound[1] / run.wall:.2g}× (bound)"
            goal = GOALS[family]
            records.append(base | {
                "peer": f"best {family} at equal accuracy"
                        + (f" ({which})" if peer_s is not None else ""),
                "peer_s": peer_s,
                "ratio": ratio,
                "goal": f"≥ {goal:g}× the best {family} solver at equal accuracy",
                "met": None if ratio is None else bool(ratio >= goal),
                "ratio_bound": None if bound is None else f"{bound[0]} {bound[1] / run.wall:.3g}",
                "no_ratio_reason": None if peer_s is not None else which,
                "notes": f"{own}" + ("" if peer_s is not None else f"; no ratio: {which}")
                         + f"; {ref_line}; {load}",
            })  # fmt: skip
    return records


def run_table(problem: Problem, runs: Sequence[Run]) -> str:
    lines = [
        f"\n### {problem.spec.label}: {problem.n:,} patients, {N_TIMES} times over "
        f"{problem.spec.horizon:g} d\n",
        "| method | rtol | time (s) | patients/s | p99 error | max error | failed "
        "| evaluations / patient | ns CPU / evaluation | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(runs, key=lambda r: (r.method, -r.rtol)):
        evals = "" if r.evals is None else f"{r.evals:,.0f}"
        cost = r.ns_per_eval(problem.n)
        lines.append(
            f"| {r.method} | {r.rtol:.0e} | {r.wall:.3g} | {problem.n / r.wall:,.0f} "
            f"| {r.error_p99:.1e} | {r.error_max:.1e} | {r.failed} | {evals} "
            f"| {'' if cost is None else f'{cost:.0f}'} | {r.evals_note} |"
        )
    return "\n".join(lines)


def ratio_table(records: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| model | rtol | cellkin (s) | p99 error | peer at equal accuracy | peer (s) | ratio "
        "| goal met |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in records:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}×"
        if r["ratio"] is None and r.get("ratio_bound"):
            ratio = f"{r['ratio_bound']}× (bound)"
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        peer_s = "" if r["peer_s"] is None else f"{r['peer_s']:.3g}"
        peer = r["peer"] or "(no peer run)"
        if r["peer_s"] is None and r["peer"]:
            peer += " — " + r["no_ratio_reason"].split("; ratio ")[0]
        lines.append(f"| {r['model']} | {r['rtol']:.0e} | {r['cellkin_s']:.3g} "
                     f"| {r['cellkin_error_p99']:.1e} | {peer} | {peer_s} | {ratio} "
                     f"| {met} |")  # fmt: skip
    return "\n".join(lines)


def summary_table(records: Sequence[dict[str, Any]], runs_by_model: dict[str, list[Run]]) -> str:
    lines = [
        "| model | peer | worst ratio (rtol) | best ratio (rtol) | rtols with a ratio "
        "| bounds outside the peer's range | goal | met | failures (method: per rtol) |",
        "|---|---|---:|---:|---|---|---|---|---|",
    ]
    for model, runs in runs_by_model.items():
        fails = {}
        for run in runs:
            fails.setdefault(run.method, []).append(run.failed)
        fail_text = "; ".join(f"{m}: {'/'.join(map(str, f))}" for m, f in fails.items()
                              if any(f)) or "none"  # fmt: skip
        for family in ("numbalsoda", "diffrax"):
            rows = [r for r in records if r["model"] == model and r["peer"]
                    and r["peer"].startswith(f"best {family}")]  # fmt: skip
            if not rows:
                continue
            rated = [r for r in rows if r["ratio"] is not None]
            if rated:
                worst = min(rated, key=lambda r: r["ratio"])
                best = max(rated, key=lambda r: r["ratio"])
                worst_s = f"{worst['ratio']:.1f}× ({worst['rtol']:.0e})"
                best_s = f"{best['ratio']:.1f}× ({best['rtol']:.0e})"
                met = "yes" if all(r["met"] for r in rated) else "**no**"
            else:
                worst_s = best_s = ""
                met = ""
            covered = ", ".join(f"{r['rtol']:.0e}" for r in rated) or "none"
            bounds = ", ".join(f"{r['ratio_bound']}× ({r['rtol']:.0e})" for r in rows
                               if r["ratio"] is None and r.get("ratio_bound"))  # fmt: skip
            lines.append(f"| {model} | {family} | {worst_s} | {best_s} | {covered} | {bounds} "
                         f"| ≥ {GOALS[family]:g}× | {met} | {fail_text} |")  # fmt: skip
    return "\n".join(lines)


def plot(problem: Problem, runs: Sequence[Run], directory: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    by_method: dict[str, list[Run]] = {}
    for run in runs:
        by_method.setdefault(run.method, []).append(run)
    for method, series in by_method.items():
        series = sorted(series, key=lambda r: -r.rtol)
        pts = [(r.error_p99, r.wall, r.rtol) for r in series if math.isfinite(r.error_p99)]
        if not pts:
            continue
        style = "o-" if method.startswith("cellkin") else "s--"
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], style, label=method)
        for e, t, rtol in pts:
            ax.annotate(f"{math.log10(rtol):.0f}", (e, t), fontsize=6, alpha=0.7,
                        textcoords="offset points", xytext=(3, 3))  # fmt: skip
    ax.set_xlabel("p99 over patients of the max relative error of the observed level")
    ax.set_ylabel(f"wall time for {problem.n:,} patients (s, {CORES} cores)")
    ax.set_title(f"{problem.spec.label}: work vs precision (labels: log10 rtol)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"work_precision_{problem.spec.name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CI size: 50 patients, 2 rtols")
    parser.add_argument("--json", metavar="FILE", help="write the records (a JSON list) here")
    parser.add_argument("--patients", type=int, help="patients per model (default 10,000)")
    parser.add_argument("--rtols", type=float, nargs="+", help="relative tolerances")
    parser.add_argument("--models", nargs="+", choices=[s.name for s in MODELS])
    parser.add_argument("--repeats", type=int, help="timed calls per point (median)")
    parser.add_argument("--count", type=int, help="patients on which evaluations are counted")
    parser.add_argument("--plots", metavar="DIR", help="write the PNGs here")
    parser.add_argument("--no-peers", action="store_true", help="cellkin only")
    parser.add_argument(
        "--atol-scaling",
        choices=("rtol", "fixed"),
        default="rtol",
        help="atol = the model's default × rtol/1e-6 (rtol) or the default",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    n = args.patients or (50 if smoke else 10_000)
    rtols = tuple(sorted(args.rtols or ((1e-6, 1e-8) if smoke else RTOLS), reverse=True))
    specs = [s for s in MODELS if not args.models or s.name in args.models]
    repeats = args.repeats or (1 if smoke else 3)
    count = args.count if args.count is not None else (20 if smoke else 200)
    plots = Path(args.plots) if args.plots else (None if smoke else Path(__file__).parent
                                                 / "results")  # fmt: skip
    start_load, started = _load(), time.perf_counter()
    versions = f"numba {numba.__version__}, numpy {np.__version__}"
    versions += f", numbalsoda {_version('numbalsoda')}" if numbalsoda is not None else ""
    if jax is not None:
        versions += f", jax {jax.__version__}, diffrax {_version('diffrax')}"
    print(f"# Work-precision ({'smoke' if smoke else 'full'}): {n:,} patients per model, "
          f"rtol {', '.join(f'{r:.0e}' for r in rtols)}\n")  # fmt: skip
    print(
        f"{CORES} cores (numba threads {numba.get_num_threads()}"
        + (f", {jax.local_device_count()} XLA host devices" if jax is not None else "")
        + f"); {versions}; Python {sys.version.split()[0]}; {start_load} at the start"
    )
    if numbalsoda is None or jax is None:
        missing = [name for name, mod in (("numbalsoda", numbalsoda), ("jax/diffrax", jax))
                   if mod is None]  # fmt: skip
        print(f"\nNot installed (skipped): {', '.join(missing)}.")
    records, runs_by_model = [], {}
    for index, spec in enumerate(specs):
        problem = population(spec, n)
        problem.scale_atol = args.atol_scaling == "rtol"
        use_peers = not args.no_peers and (not smoke or spec.name == "kimmel2021")
        pairs = peers_for(problem, use_peers)
        ref, ref_line = reference(problem, use_peers, check=min(n, 50 if smoke else 1000))
        runs = sweep(problem, rtols, pairs, ref, repeats,
                     count if (not smoke or index == 0) else 0, smoke)  # fmt: skip
        check = ""
        tightest: dict[str, Run] = {}
        for run in runs:
            if run.family == "diffrax" and run.rtol <= tightest.get(run.method, run).rtol:
                tightest[run.method] = run
        if tightest:
            check = "; jax transcription vs reference (tightest diffrax runs): " + ", ".join(
                f"{r.method} at rtol {r.rtol:.0e} p99 {r.error_p99:.1e}" for r in tightest.values()
            )
        load = _load()
        print(run_table(problem, runs))
        print(f"\n{ref_line}{check}; {load}")
        recs = records_for(problem, runs, ref_line, load, repeats)
        records += recs
        runs_by_model[spec.name] = runs
        if plots is not None:
            print(f"plot: {os.path.relpath(plot(problem, runs, plots))}")
        sys.stdout.flush()
    print("\n## Equal accuracy: cellkin auto vs the best peer solver at cellkin's p99 error\n")
    print(ratio_table(records))
    print("\n## Summary per model (worst and best ratio over the rtols with a ratio)\n")
    print(summary_table(records, runs_by_model))
    print(
        f"\nTotal {time.perf_counter() - started:.0f} s; {start_load} at the start, "
        f"{_load()} at the end."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
