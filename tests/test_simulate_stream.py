"""`cellkin.simulate.simulate_population`: streamed parquet output and per-time summaries.

References: the Stein 2019 closed form written out here, ``numpy.quantile``/``mean`` on all
the levels read back from the file, and the log-normal residual law. Reproducibility is
checked across chunk sizes (which cut the 4096-patient random blocks in different places),
numba thread counts and population sizes.
"""

from __future__ import annotations

import importlib
import json

import numba
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cellkin import models
from cellkin.errors import DataError, ModelError, OptionError
from cellkin.simulate import PopulationSimulation, simulate_population, time_column

STEIN = models.get("stein2019")
TIMES = [-1.0, 1.0, 7.0, 9.3, 28.0, 84.0, 365.0]
N = 5000  # more than one 4096-patient random block


def _stein(t, cmax, tmax, foldx, alpha, fb, beta):
    """Stein et al. 2019 closed form (doi:10.1002/psp4.12388), per row of parameter arrays."""
    t = np.asarray(t, dtype=float)[np.newaxis, :]
    cmax, tmax, foldx, alpha, fb, beta = (np.asarray(x)[:, np.newaxis] for x in
                                          (cmax, tmax, foldx, alpha, fb, beta))  # fmt: skip
    grow = cmax / foldx * np.exp(np.log(foldx) / tmax * np.minimum(t, tmax))
    after = np.maximum(t - tmax, 0.0)
    decline = cmax * ((1 - fb) * np.exp(-alpha * after) + fb * np.exp(-beta * after))
    return np.where(t < 0, 0.0, np.where(t < tmax, grow, decline))


@pytest.fixture(scope="module")
def noise_free(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "pop.parquet"
    result = simulate_population("stein2019", N, seed=3, times=TIMES, output=path, chunk_size=1000)
    return result, pd.read_parquet(path)


def test_wide_file_holds_the_closed_form_levels(noise_free):
    result, table = noise_free
    assert isinstance(result, PopulationSimulation) and result.n_failed == 0
    day_columns = [time_column(t) for t in TIMES]
    assert day_columns[:3] == ["day_-1", "day_1", "day_7"]
    assert list(table.columns) == ["subject", *STEIN.param_names, "failed", *day_columns]
    assert table["subject"].tolist() == list(range(1, N + 1)) and not table["failed"].any()
    expected = _stein(TIMES, *(table[name] for name in STEIN.param_names))
    np.testing.assert_allclose(table[day_columns].to_numpy(), expected, rtol=1e-12, atol=0)
    metadata = json.loads(pq.read_schema(result.output).metadata[b"cellkin"])
    assert metadata["model"] == "stein2019" and metadata["times"] == TIMES
    assert metadata["seed"] == 3 and metadata["layout"] == "wide"
    assert [p.name for p in result.output.parent.iterdir()] == [result.output.name]
    pd.testing.assert_frame_equal(result.read(["subject", "cmax"]), table[["subject", "cmax"]])


def test_population_has_the_published_variability(noise_free):
    _, table = noise_free
    eta = np.log(table["cmax"] / STEIN.defaults["cmax"])
    assert eta.std() == pytest.approx(STEIN.omega["cmax"], rel=0.05)
    assert abs(eta.mean()) < 0.05


def test_summary_matches_exact_numpy_statistics(noise_free):
    result, table = noise_free
    levels = table[[time_column(t) for t in TIMES]].to_numpy()
    summary = result.summary
    assert list(summary.columns) == ["time", "n", "mean", "min", "p5", "p50", "p95", "max"]
    assert summary["time"].tolist() == TIMES and (summary["n"] == N).all()
    np.testing.assert_allclose(summary["mean"], levels.mean(axis=0), rtol=1e-13)
    np.testing.assert_array_equal(summary["min"], levels.min(axis=0))
    np.testing.assert_array_equal(summary["max"], levels.max(axis=0))
    exact = np.quantile(levels, [0.05, 0.5, 0.95], axis=0).T
    estimate = summary[["p5", "p50", "p95"]].to_numpy()
    bound = result.quantile_rel_error
    assert bound == pytest.approx(2**-9)
    assert (np.abs(estimate - exact) <= bound * exact + 1e-300).all()
    assert (estimate[0] == 0).all()  # before infusion every level is exactly 0
    assert np.abs(estimate - exact).max() > 0  # approximate indeed: the bound is what is tested


@pytest.mark.parametrize("quantiles", [(0.0, 1.0), (0.01, 0.25, 0.999)])
def test_any_quantiles_within_the_bound(noise_free, quantiles, tmp_path):
    _, table = noise_free
    result = simulate_population(
        "stein2019", N, seed=3, times=TIMES, summary_quantiles=quantiles, chunk_size=2500
    )
    levels = table[[time_column(t) for t in TIMES]].to_numpy()
    exact = np.quantile(levels, quantiles, axis=0).T
    estimate = result.summary[[f"p{100 * q:g}" for q in quantiles]].to_numpy()
    assert (np.abs(estimate - exact) <= result.quantile_rel_error * exact + 1e-300).all()


def test_chunk_size_does_not_change_file_or_summary(noise_free, tmp_path):
    reference, _ = noise_free
    expected = pq.read_table(reference.output)
    for chunk_size in (777, N):
        path = tmp_path / f"chunk{chunk_size}.parquet"
        result = simulate_population(
            "stein2019", N, seed=3, times=TIMES, output=path, chunk_size=chunk_size
        )
        assert pq.read_table(path).equals(expected), chunk_size
        pd.testing.assert_frame_equal(result.summary, reference.summary, check_exact=True)
    no_file = simulate_population("stein2019", N, seed=3, times=TIMES, chunk_size=1234)
    pd.testing.assert_frame_equal(no_file.summary, reference.summary, check_exact=True)
    assert no_file.output is None
    with pytest.raises(DataError, match="no file"):
        no_file.read()


def test_numba_thread_count_does_not_change_results(tmp_path):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba was started with one thread")
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            path = tmp_path / f"threads{threads}.parquet"
            result = simulate_population(
                "stein2019", 3000, seed=8, times=TIMES, output=path, sigma=0.4, lloq=50
            )
            runs.append((pq.read_table(path), result.summary))
    finally:
        numba.set_num_threads(before)
    assert runs[0][0].equals(runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1], check_exact=True)


def test_patients_do_not_depend_on_n_and_residuals_do_not_depend_on_chunks(tmp_path):
    def run(n, chunk_size, name):
        path = tmp_path / name
        simulate_population(
            "stein2019", n, seed=5, times=[1, 14, 90], output=path, chunk_size=chunk_size,
            sigma=0.5, lloq=10.0,
        )  # fmt: skip
        return pd.read_parquet(path)

    small = run(4500, 4500, "a.parquet")
    pd.testing.assert_frame_equal(run(9000, 1001, "b.parquet").iloc[:4500], small)
    pd.testing.assert_frame_equal(run(4500, 300, "c.parquet"), small)


def test_residual_error_is_lognormal_and_blq_is_censored(tmp_path):
    times = [2.0, 9.3, 28.0]
    path = tmp_path / "noisy.parquet"
    result = simulate_population(
        "stein2019", 6000, seed=2, times=times, output=path, sigma=0.3, lloq=200.0
    )
    table = pd.read_parquet(path)
    observed = table[[time_column(t) for t in times]].to_numpy()
    predicted = _stein(times, *(table[name] for name in STEIN.param_names))
    quantified = ~np.isnan(observed)
    assert ((predicted * np.exp(-5 * 0.3) < 200) | quantified).all()  # BLQ only near the LLOQ
    assert (observed[quantified] >= 200).all()
    ratio = np.log(observed / predicted)[quantified & (predicted > 200 * np.exp(1.5))]
    assert ratio.std() == pytest.approx(0.3, rel=0.03)
    assert abs(ratio.mean()) < 0.01
    np.testing.assert_allclose(result.summary["blq_fraction"], 1 - quantified.mean(axis=0))
    assert result.sigma == 0.3 and result.lloq == 200.0


def test_lloq_alone_takes_the_published_sigma():
    result = simulate_population("stein2019", 10, seed=1, times=[7.0], lloq=50.0)
    assert result.sigma == STEIN.sigma


def test_ode_model_streams_and_is_chunk_invariant(tmp_path):
    kimmel = models.get("kimmel2021")
    times = [1.0, 7.0, 28.0]
    omega = {"k_c": 0.3, "rho_c": 0.3}
    paths = [tmp_path / "k1.parquet", tmp_path / "k2.parquet"]
    for path, chunk_size in zip(paths, (40, 150), strict=True):
        simulate_population(
            kimmel, 150, seed=4, times=times, omega=omega, output=path, chunk_size=chunk_size
        )
    table = pd.read_parquet(paths[0])
    assert pq.read_table(paths[1]).equals(pq.read_table(paths[0]))
    assert table["k_c"].nunique() == 150 and table["a"].nunique() == 1
    expected = kimmel.simulate_many(times, table)  # the model's own kernel, one call
    np.testing.assert_array_equal(table[[time_column(t) for t in times]].to_numpy(), expected)


def test_output_policy_missing_folder_existing_file_and_interrupted_run(tmp_path, monkeypatch):
    """A missing folder is created; an existing file is refused before any work unless
    `overwrite`; an interrupted run leaves neither the file nor a partial one (issue 20: an
    interrupted run used to leave a valid-looking 0-row ``.parquet.partial``)."""
    path = tmp_path / "no" / "x.pq"
    simulate_population("stein2019", 5, seed=0, times=[1.0], output=path)
    assert len(pd.read_parquet(path)) == 5
    with pytest.raises(OptionError, match=r"x.pq already exists; .*overwrite=True"):
        simulate_population("stein2019", 7, seed=0, times=[1.0], output=path)
    simulate_population("stein2019", 7, seed=0, times=[1.0], output=path, overwrite=True)
    assert len(pd.read_parquet(path)) == 7

    stream = importlib.import_module("cellkin.simulate._stream")
    real, calls = stream._write_chunk, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "_write_chunk", interrupted)
    other = tmp_path / "other.parquet"
    with pytest.raises(KeyboardInterrupt):
        simulate_population("stein2019", 50, seed=0, times=[1.0], output=other, chunk_size=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no"]  # no file, no partial file
    calls.clear()
    with pytest.raises(KeyboardInterrupt):  # replacing a file: the old one stays whole
        simulate_population("stein2019", 50, seed=0, times=[1.0], output=path, chunk_size=10,
                            overwrite=True)  # fmt: skip
    assert len(pd.read_parquet(path)) == 7 and [p.name for p in path.parent.iterdir()] == ["x.pq"]


def test_a_chunk_too_large_for_the_memory_is_refused_before_allocation(monkeypatch):
    memory = importlib.import_module("cellkin._memory")
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * 2**20)
    with pytest.raises(OptionError, match=r"chunk_size=1000000 .* about \d\.\d GB .* 100\.0 MB"):
        simulate_population("stein2019", 10**6, seed=0, times=np.arange(1.0, 61.0),
                            chunk_size=10**6)  # fmt: skip
    simulate_population("stein2019", 1000, seed=0, times=np.arange(1.0, 61.0), chunk_size=1000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "`n`"),
        ({"seed": -2}, "seed"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"times": [7.0, 1.0]}, "strictly increasing"),
        ({"times": [1.0, 1.0 + 1e-16]}, "strictly increasing"),
        ({"times": [1.0, 1.0 + 1e-15]}, "15 significant"),
        ({"times": []}, "strictly increasing"),
        ({"summary_quantiles": (0.5, 1.5)}, "probabilities"),
        ({"lloq": -1.0}, "lloq"),
        ({"sigma": -1.0}, "sigma"),
        ({"omega": {"cmax": -0.1}}, "omega"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"model": "stein2019", "n": 10, "seed": 0, "times": [1.0], **kwargs}
    with pytest.raises(OptionError, match=message):
        simulate_population(arguments.pop("model"), arguments.pop("n"), **arguments)


def test_a_model_without_published_sigma_needs_one():
    with pytest.raises(ModelError, match="no published `sigma`"):
        simulate_population("kimmel2021", 10, seed=0, times=[1.0], lloq=1.0)
