"""The ``cellkin`` command line, run in-process through ``cellkin.cli.main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin import models
from cellkin.cli import main
from cellkin.simulate import virtual_population


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cellkin {cellkin.__version__}"
    assert main([]) == 0
    assert "examples:" in capsys.readouterr().out


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "cellkin", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("cellkin ")


def test_validate_example_prints_a_summary_of_every_table(capsys):
    assert main(["validate", "--example"]) == 0
    out = capsys.readouterr().out
    for table in ("kinetics", "subjects", "lesions", "adverse_events"):
        assert f"\n{table}: " in out
    assert "synthetic" in out
    assert "qpcr" in out and "flow" in out


def test_validate_files_and_exclusions(tmp_path, capsys):
    study = cellkin.load_example()
    path = tmp_path / "kinetics.csv"
    study.kinetics.to_csv(path, index=False)
    assert main(["validate", "--kinetics", str(path), "--exclude-before", "-1"]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "kinetics:" in out


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "broken.csv"
    pd.DataFrame({"subject": ["A"], "time": ["D7"], "value": [1.0]}).to_csv(path, index=False)
    assert main(["validate", "--kinetics", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cellkin: error: ") and "broken.csv" in lines[0]
    assert "Traceback" not in captured.err
    assert main(["--debug", "validate", "--kinetics", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--verbose", "validate", "--kinetics", str(path)]) == 2  # the former name
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate"], "nothing to validate"),
        (["simulate", "--seed", "1", "--times", "1,x"], "--times"),
        (["simulate", "--seed", "1", "-o", "out.txt"], "unsupported output extension"),
        (["simulate", "--seed", "1", "-o", "a.csv", "--summary", "s.csv"], "--summary needs"),
        (["simulate", "--seed", "1", "--times", "1", "--schedule", "s.csv"], "not both"),
        (["simulate", "--seed", "1", "--schedule", "missing.csv"], "no such file"),
        (["simulate", "--seed", "1", "--omega", "cmax:0.2", "--summary", "s.csv"], "--omega"),
    ],
)
def test_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_simulate_writes_noise_free_levels_of_the_seeded_population(tmp_path):
    out, params_out = tmp_path / "sim.csv", tmp_path / "params.csv"
    argv = ["simulate", "--n", "7", "--seed", "4", "--times", "1,9,28", "-o", str(out)]
    assert main([*argv, "--params-output", str(params_out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 21
    population = virtual_population("stein2019", 7, seed=4)
    pd.testing.assert_frame_equal(pd.read_csv(params_out), population)
    expected = models.get("stein2019").simulate_many([1, 9, 28], population).ravel()
    np.testing.assert_allclose(table["value"], expected, rtol=1e-12)


def test_simulate_streams_parquet_with_a_schedule_and_a_summary(tmp_path, capsys):
    schedule, out, summary = tmp_path / "visits.csv", tmp_path / "pop.parquet", tmp_path / "s.csv"
    pd.DataFrame({"time": [28.0, 1.0, 9.0, 1.0]}).to_csv(schedule, index=False)
    params_out = tmp_path / "params.csv"
    argv = ["simulate", "--n", "2500", "--seed", "6", "--schedule", str(schedule), "-o", str(out),
            "--summary", str(summary), "--chunk-size", "999", "--no-progress",
            "--params-output", str(params_out)]  # fmt: skip
    assert main(argv) == 0
    assert "2500 patients x 3 times" in capsys.readouterr().out
    table = pd.read_parquet(out)
    stein = models.get("stein2019")
    levels = stein.simulate_many([1.0, 9.0, 28.0], table)  # per patient, from its parameters
    np.testing.assert_allclose(table[["day_1", "day_9", "day_28"]], levels, rtol=1e-12)
    pd.testing.assert_frame_equal(pd.read_csv(params_out), table[["subject", *stein.param_names]])
    written = pd.read_csv(summary)
    assert written["time"].tolist() == [1.0, 9.0, 28.0] and (written["n"] == 2500).all()
    np.testing.assert_allclose(written["mean"], levels.mean(axis=0), rtol=1e-12)
    exact = np.median(levels, axis=0)
    assert (np.abs(written["p50"] - exact) <= 2**-9 * exact).all()
    again = tmp_path / "again.parquet"
    assert main([*argv[:7], "-o", str(again), "--chunk-size", "2500", "--no-progress"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again), table)


def test_simulate_with_lloq_gives_a_kinetics_table(tmp_path):
    out = tmp_path / "trial.csv"
    argv = ["simulate", "--n", "5", "--seed", "2", "--lloq", "50", "-o", str(out)]
    assert main(argv) == 0
    trial = cellkin.read_kinetics(out)
    assert trial["subject"].nunique() == 5
    assert trial["blq"].any()


def test_nca_on_the_example_writes_one_row_per_subject_and_assay(tmp_path, capsys):
    out = tmp_path / "nca.csv"
    assert main(["nca", "--example", "-o", str(out), "--auc-method", "linup-logdown"]) == 0
    table = pd.read_csv(out)
    kinetics = cellkin.load_example().kinetics
    assert len(table) == kinetics.groupby(["subject", "assay"]).ngroups
    assert (table["auc_method"] == "linup-logdown").all()
    printed = capsys.readouterr().out
    assert "dose_level" in printed and "auc_0_28" in printed


def test_nca_on_a_file_in_long_form(tmp_path):
    source, out = tmp_path / "k.csv", tmp_path / "long.csv"
    cellkin.load_example().kinetics.to_csv(source, index=False)
    assert main(["nca", str(source), "--long", "--intervals", "0-28", "-o", str(out)]) == 0
    long = pd.read_csv(out)
    assert {"metric", "value", "unit", "pptestcd", "exclude_reason"} <= set(long.columns)
    assert "auc_0_28" in set(long["metric"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nca"], "either a kinetics FILE or --example"),
        (["nca", "--example", "--intervals", "0:28"], "START-END"),
    ],
)
def test_nca_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_every_subcommand_help_shows_examples(capsys):
    from cellkin.cli import build_parser

    commands = ["validate", "nca", "simulate", "fit", "report"]
    for command in commands:
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"cellkin {command} " in text, command
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(choices) == set(commands)


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.csv")
    assert main(["validate", missing]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["validate", missing, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("cellkin: error:")


def test_validate_recognises_files_by_their_columns(capsys):
    from cellkin.datasets import load_example

    source = load_example().source
    files = [str(source / f"{name}.csv") for name in ("lesions", "kinetics", "subjects")]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    for name in ("kinetics:", "subjects:", "lesions:"):
        assert name in out


def test_validate_prints_what_it_recognised_and_every_problem(capsys):
    """#17: validate lists each recognition/conversion and every problem in one pass."""
    exports = Path(__file__).parent / "data" / "lab_exports"
    assert main(["validate", str(exports / "lims_qualifier.csv")]) == 0
    out = capsys.readouterr().out
    assert "column `Result Qualifier` read as `blq` (7 rows)" in out
    assert "read as the sample's LLOQ" in out and "no problems found" in out
    argv = ["validate", "--kinetics", str(exports / "kinetics_case_ids.csv"), "--subjects",
            str(exports / "subjects_contradictions.csv")]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out.count("\n  ERROR ") == 7 and "WARNING kinetics P09" in captured.out
    assert captured.err.startswith("cellkin: error: 7 error(s) in the study tables")
    assert main([*argv, "--normalise-ids"]) == 2  # the ids are notes; the clinical errors stay
    assert capsys.readouterr().out.count("\n  ERROR ") == 5


def test_validate_reads_with_a_toml_mapping(capsys):
    exports = Path(__file__).parent / "data" / "lab_exports"
    argv = ["validate", "--kinetics", str(exports / "novel_lims.csv"), "--mapping",
            str(exports / "novel_lims.toml")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "column `PT_NO` read as `subject` (mapping)" in out
    assert "converted from hours to days" in out


def test_fit_exits_non_zero_when_nothing_was_fitted(tmp_path, capsys):
    """#17 item 6: an unknown --subject and a batch where every fit failed are errors."""
    assert main(["fit", "--example", "--subject", "NOPE", "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--subject: 1 unknown subject(s) 'NOPE'" in err[0]
    path = tmp_path / "two_samples.csv"
    pd.DataFrame({"subject": ["A", "A", "B", "B"], "time": [7.0, 14.0, 7.0, 14.0],
                  "value": [900.0, 300.0, 500.0, 100.0], "assay": "qpcr",
                  "unit": "copies/ug", "lloq": 50.0}).to_csv(path, index=False)  # fmt: skip
    output = tmp_path / "fits"
    argv = ["fit", str(path), "-o", str(output), "--jobs", "1", "--no-progress"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no subject was fitted: all 2 failed" in err[0]
    assert (output / "failures.csv").is_file()  # the reasons are written before exiting


_EXPORTS = Path(__file__).parent / "data" / "lab_exports"


@pytest.mark.parametrize(
    "argv",
    [
        ["lims_qualifier.csv"],
        ["blq_text.csv"],
        ["hours.csv"],
        ["visits.csv"],
        ["wide_visits.csv"],
        ["wide_with_title.xlsx"],
        ["semicolon_decimal_comma.csv"],
        ["title_lines.csv"],
        ["flow_mixed_units.csv"],
        ["pct_cd3.csv"],
        ["kinetics_dates.csv", "subjects_infusion.csv"],
        ["novel_lims.csv", "--mapping", "novel_lims.toml"],
    ],
)
def test_validate_prints_the_recognitions_of_each_lab_export(argv, capsys):
    """#17: `cellkin validate` on each lab export prints what it recognised and converted."""
    args = [str(_EXPORTS / a) if a.endswith((".csv", ".xlsx", ".toml")) else a for a in argv]
    assert main(["validate", *args]) == 0
    out = capsys.readouterr().out
    assert "recognised and converted:" in out and "no problems found" in out


@pytest.mark.parametrize(
    "name",
    ["lloq_zero.csv", "units_not_convertible.csv", "formulas_no_cache.xlsx",
     "decimal_ambiguous.csv"],
)  # fmt: skip
def test_validate_refuses_each_bad_lab_export_in_one_line(name, capsys):
    assert main(["validate", "--kinetics", str(_EXPORTS / name)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and err[0].startswith("cellkin: error: 1 error(s)")
