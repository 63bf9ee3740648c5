"""``cellkin fit``: tables and figures from a kinetics file or the example, exit code 2 on
bad input, resume from a checkpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.cli import main
from cellkin.simulate import sample_trial, virtual_population

RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
QUICK = ["--jobs", "1", "--starts", "1", "--no-progress"]


@pytest.fixture(scope="module")
def kinetics_file(tmp_path_factory):
    kinetics = sample_trial(
        "stein2019", virtual_population("stein2019", 2, seed=5), RICH, lloq=50, seed=6
    )
    blq = kinetics[kinetics["subject"] == "VP001"].assign(subject="ALLBLQ", value=np.nan, blq=True)
    path = tmp_path_factory.mktemp("cli") / "kinetics.csv"
    pd.concat([kinetics, blq]).to_csv(path, index=False)
    return path


def test_fit_writes_tables_and_figures(kinetics_file, tmp_path, capsys):
    out = tmp_path / "fits"
    assert main(["fit", str(kinetics_file), "-o", str(out), "--plots", *QUICK]) == 0
    stdout = capsys.readouterr().out
    assert "Batch fit of 3 subjects: stein2019" in stdout and "wrote params.csv" in stdout
    params = pd.read_csv(out / "params.csv")
    assert list(dict.fromkeys(params["subject"])) == ["VP001", "VP002"]
    assert len(pd.read_csv(out / "metrics.csv")) == 2
    assert list(pd.read_csv(out / "statistics.csv")["subject"]) == ["VP001", "VP002"]
    failures = pd.read_csv(out / "failures.csv")
    assert failures.loc[failures["subject"] == "ALLBLQ", "stage"].tolist() == ["fit"]
    figures = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert figures == ["VP001.png", "VP002.png"]
    assert all((out / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in figures)


def test_fit_resumes_from_a_checkpoint_and_refuses_other_options(kinetics_file, tmp_path, capsys):
    checkpoint, out = tmp_path / "fits.jsonl", tmp_path / "out"
    argv = ["fit", str(kinetics_file), "-o", str(out), "--checkpoint", str(checkpoint), *QUICK]
    assert main([*argv, "--subject", "VP002"]) == 0
    argv.append("--overwrite")  # the first run's tables are in `out`
    assert main(argv) == 0
    assert len(checkpoint.read_text().splitlines()) == 1 + 3
    capsys.readouterr()
    assert main([*argv, "--blq", "drop"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fit_options.blq: 'm3' in the file, 'drop' now" in err[0]


def test_fit_on_the_example_study_with_a_joint_fit(tmp_path, capsys):
    out = tmp_path / "example"
    argv = ["fit", "--example", "--subject", "KD025-101", "--assay", "qpcr,flow", "-o", str(out)]
    assert main([*argv, *QUICK]) == 0
    params = pd.read_csv(out / "params.csv")
    assert set(params["subject"]) == {"KD025-101"} and "scale_flow" in set(params["parameter"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit"], "give either a kinetics FILE or --example"),
        (["fit", "missing.csv"], "missing.csv"),
    ],
)
def test_fit_bad_input_gives_one_line_and_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cellkin: error: ") and message in err[0]


def test_fit_rejects_bad_option_values(capsys):
    for argv in (["fit", "x.csv", "--jobs", "0"], ["fit", "x.csv", "--model", "nope"]):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("cellkin: error: argument ") for line in err)
    assert "--jobs: expected an integer from 1 to 1024, got '0'" in err[0]
    assert "--model: invalid choice: 'nope'" in err[1]
