"""Interleaved latency in one process and its ranking: paired-bootstrap speed-up intervals over rounds, "within
noise" between candidates, clear refusals of bad input, and a real interleaved run on two ONNX graphs (checked for
shape and sanity, never for which is faster: tests check correctness, not timing)."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from deepseek._core.errors import DeepSeekError, InvalidArgumentError
from deepseek.optimize.latency import ArtifactRunError, measure_interleaved, time_interleaved
from deepseek.optimize.ranking import LatencyEstimate, rank_latencies, summary_line


def jittered(level: float, rounds: int = 7, *, scale: float = 0.005, seed: int = 0) -> list[float]:
    return list(level * (1 + scale * np.random.default_rng(seed).standard_normal(rounds)))


# --- ranking -------------------------------------------------------------------------------------------------------

def test_a_candidate_at_half_the_baseline_is_ranked_first_at_twice_the_speed():
    estimates = rank_latencies({"base": jittered(2.0, seed=1), "fast": jittered(1.0, seed=2)}, "base")
    assert [e.name for e in estimates] == ["fast", "base"]
    fast, base = estimates
    assert fast.ratio == pytest.approx(2.0, rel=0.02) and fast.ratio_low <= 2.0 <= fast.ratio_high
    assert fast.ratio_low > 1.5  # excludes 1: the speed-up is real
    assert fast.median_ms == pytest.approx(np.median(jittered(1.0, seed=2)))
    assert fast.rounds == 7 and fast.within_noise_of == () and base.within_noise_of == ()
    assert (base.ratio, base.ratio_low, base.ratio_high) == (1.0, 1.0, 1.0) and base.is_baseline
    assert fast.ratio == pytest.approx(base.median_ms / fast.median_ms)


def test_the_ranking_sorts_fastest_first_and_ratios_are_speed_ups():
    samples = {"base": jittered(1.0, seed=1), "slow": jittered(1.5, seed=2), "fast": jittered(0.25, seed=3),
               "mid": jittered(0.5, seed=4)}
    estimates = rank_latencies(samples, "base")
    assert [e.name for e in estimates] == ["fast", "mid", "base", "slow"]
    ratios = {e.name: e.ratio for e in estimates}
    assert ratios == pytest.approx({"fast": 4.0, "mid": 2.0, "base": 1.0, "slow": 1 / 1.5}, rel=0.02)
    slow = estimates[-1]
    assert slow.ratio_high < 1  # slower than the baseline, and the interval says so


def test_candidates_from_one_distribution_are_within_noise_of_each_other_and_not_of_the_rest():
    samples = {"base": jittered(1.0, 9, scale=0.1, seed=1), "a": jittered(0.5, 9, scale=0.1, seed=2),
               "b": jittered(0.5, 9, scale=0.1, seed=3)}
    estimates = {e.name: e for e in rank_latencies(samples, "base")}
    assert estimates["a"].within_noise_of == ("b",) and estimates["b"].within_noise_of == ("a",)
    assert estimates["base"].within_noise_of == ()
    for name in "ab":
        assert estimates[name].ratio_low <= 2.0 <= estimates[name].ratio_high and estimates[name].ratio_low > 1
    # the baseline against a twin of itself: its interval of the speed-up straddles 1
    twin = {e.name: e for e in rank_latencies({"base": samples["base"], "twin": jittered(1.0, 9, scale=0.1, seed=4)},
                                              "base")}["twin"]
    assert twin.ratio_low <= 1.0 <= twin.ratio_high and twin.within_noise_of == ("base",)


def unpaired_interval(base: list[float], candidate: list[float], *, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """What one would get resampling each candidate's rounds independently: the machine state not shared."""
    rng = np.random.default_rng(seed)
    b, c = np.asarray(base), np.asarray(candidate)
    ratio = (np.median(rng.choice(b, (resamples, len(b))), axis=1)
             / np.median(rng.choice(c, (resamples, len(c))), axis=1))
    low, high = np.quantile(ratio, [0.025, 0.975])
    return float(low), float(high)


def test_a_slowdown_every_candidate_shares_does_not_widen_the_paired_interval():
    # the machine's state in each round: rounds 1, 3 and 5 ran while another tenant was busy (2 to 3 times slower)
    machine = np.array([1.0, 2.8, 1.1, 3.0, 1.05, 2.9, 1.0])
    base = list(1.0 * machine * (1 + 0.01 * np.random.default_rng(1).standard_normal(7)))
    candidate = list(0.8 * machine * (1 + 0.01 * np.random.default_rng(2).standard_normal(7)))
    (estimate,) = [e for e in rank_latencies({"base": base, "cand": candidate}, "base") if e.name == "cand"]
    assert estimate.ratio_low <= 1.25 <= estimate.ratio_high and estimate.ratio_low > 1.1
    assert estimate.within_noise_of == ()
    low, high = unpaired_interval(base, candidate)
    assert low < 1.0 < high  # unpaired, the shared slowdown swamps the 25 % speed-up
    assert estimate.ratio_high - estimate.ratio_low < (high - low) / 5


def test_the_bootstrap_is_deterministic_for_a_seed():
    samples = {"base": jittered(1.0, scale=0.2, seed=1), "a": jittered(0.9, scale=0.2, seed=2)}
    assert rank_latencies(samples, "base", seed=3) == rank_latencies(samples, "base", seed=3)
    wider = rank_latencies(samples, "base", confidence=0.99)[0]
    narrower = rank_latencies(samples, "base", confidence=0.5)[0]
    assert wider.ratio_low <= narrower.ratio_low <= narrower.ratio_high <= wider.ratio_high


def test_the_summary_line_names_the_fastest_its_interval_and_its_peers():
    samples = {"ort-fp32": jittered(2.0, seed=1), "ort-int8": jittered(1.0, 7, scale=0.05, seed=2),
               "inductor-fp32": jittered(1.0, 7, scale=0.05, seed=3)}
    estimates = rank_latencies(samples, "ort-fp32")
    head = estimates[0]
    other = "inductor-fp32" if head.name == "ort-int8" else "ort-int8"
    assert summary_line(estimates) == (f"{head.name} {head.ratio:.2f}x [{head.ratio_low:.2f}, {head.ratio_high:.2f}]"
                                       f" vs baseline ort-fp32; within noise of {other}")
    alone = rank_latencies({"base": jittered(1.0, seed=1), "slow": jittered(3.0, seed=2)}, "base")
    assert summary_line(alone) == f"no candidate is faster than the baseline base ({alone[0].median_ms:.3g} ms)"


BAD_RANKINGS = {
    "baseline missing": ({"a": [1.0] * 3}, "b", {}, "baseline"),
    "two rounds": ({"a": [1.0, 1.1], "b": [1.0, 1.2]}, "a", {}, "samples['a']"),
    "unequal rounds": ({"a": [1.0] * 4, "b": [1.0] * 3}, "a", {}, "same number of rounds"),
    "a NaN": ({"a": [1.0] * 3, "b": [1.0, math.nan, 1.0]}, "a", {}, "samples['b']"),
    "an infinity": ({"a": [1.0] * 3, "b": [1.0, math.inf, 1.0]}, "a", {}, "samples['b']"),
    "a zero time": ({"a": [1.0, 0.0, 1.0], "b": [1.0] * 3}, "a", {}, "samples['a']"),
    "a negative time": ({"a": [1.0] * 3, "b": [1.0, -1.0, 1.0]}, "a", {}, "samples['b']"),
    "text times": ({"a": [1.0] * 3, "b": ["fast", "x", "y"]}, "a", {}, "samples['b']"),
    "a string of times": ({"a": [1.0] * 3, "b": "123"}, "a", {}, "samples['b']"),
    "no samples": ({}, "a", {}, "samples"),
    "confidence 1": ({"a": [1.0] * 3}, "a", {"confidence": 1.0}, "confidence"),
    "confidence in percent": ({"a": [1.0] * 3}, "a", {"confidence": 95}, "confidence"),
    "no resamples": ({"a": [1.0] * 3}, "a", {"resamples": 0}, "resamples"),
    "a float seed": ({"a": [1.0] * 3}, "a", {"seed": 0.5}, "seed"),
}


@pytest.mark.parametrize("case", BAD_RANKINGS, ids=list(BAD_RANKINGS))
def test_bad_rankings_are_refused_naming_the_argument(case):
    samples, baseline, options, named = BAD_RANKINGS[case]
    with pytest.raises(InvalidArgumentError, match=named.replace("[", r"\[").replace("]", r"\]")):
        rank_latencies(samples, baseline, **options)


def test_the_summary_line_refuses_no_estimates():
    with pytest.raises(InvalidArgumentError, match="estimates"):
        summary_line([])
    assert isinstance(rank_latencies({"a": [1.0] * 3}, "a")[0], LatencyEstimate)


# --- the interleaved timing loop ------------------------------------------------------------------------------------

def test_the_interleaved_loop_rotates_the_order_and_records_each_rounds_median():
    now = [0]
    log: list[str] = []
    cost_ns = {"a": 1_000_000, "b": 250_000, "c": 4_000_000}

    def fn(name):
        def call():
            log.append(name)
            now[0] += cost_ns[name]
        return call

    result = time_interleaved({n: fn(n) for n in cost_ns}, rounds=4, calls=2, warmup=3, clock=lambda: now[0])
    assert result == {"a": [1.0] * 4, "b": [0.25] * 4, "c": [4.0] * 4}
    assert log[:9] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3  # warm-up, untimed
    starts = [log[9 + 6 * r: 9 + 6 * (r + 1): 2] for r in range(4)]
    assert starts == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_the_interleaved_loop_names_the_function_that_failed():
    calls = [0]

    def flaky():
        calls[0] += 1
        if calls[0] == 5:
            raise RuntimeError("boom")

    with pytest.raises(ArtifactRunError) as info:
        time_interleaved({"ok": lambda: None, "flaky": flaky}, rounds=3, calls=2, warmup=1)
    assert info.value.name == "flaky" and str(info.value.__cause__) == "boom"


# --- a real interleaved run -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def matmuls(tmp_path_factory):
    """Two small real ONNX graphs on a [1, 16] input: one MatMul, and a chain of eight 64-wide ones."""
    from onnx import TensorProto, helper, numpy_helper, save

    root = tmp_path_factory.mktemp("interleaved")
    rng = np.random.default_rng(0)

    def write(name, widths):
        nodes, weights, previous = [], [], "x"
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
            weights.append(numpy_helper.from_array(rng.standard_normal((n_in, n_out)).astype(np.float32), f"w{i}"))
            out = "y" if i == len(widths) - 2 else f"h{i}"
            nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [out]))
            previous = out
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, widths[-1]])], weights)
        save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(root / f"{name}.onnx"))
        return root / f"{name}.onnx"

    return write("small", [16, 8]), write("large", [16] + [64] * 8)


def test_measure_interleaved_times_every_artifact_each_round(matmuls, tmp_path):
    small, large = matmuls
    sample = tmp_path / "x.npy"
    np.save(sample, np.ones((1, 16), np.float32))
    result = measure_interleaved([small, large], (1, 16), threads=1, rounds=3, calls=5, sample=sample)
    assert list(result) == [str(small), str(large)]
    for ms in result.values():
        assert len(ms) == 3 and all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in ms)
    estimates = rank_latencies(result, str(small))  # real figures rank without complaint
    assert {e.name for e in estimates} == set(result) and all(e.rounds == 3 for e in estimates)


def test_the_interleaved_process_times_onnx_without_importing_torch(matmuls):
    small, large = matmuls
    code = ("import json, sys; from deepseek.optimize.latency import measure_job; "
            f"figures = measure_job({{'interleaved': [{str(small)!r}, {str(large)!r}], 'shape': [1, 16], 'threads': 1, "
            "'rounds': 3, 'calls': 2}); print(json.dumps(figures)); "
            "print(json.dumps({'torch': sorted(m for m in sys.modules if m.split('.')[0] == 'torch')}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    figures, checks = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert checks == {"torch": []}
    assert sorted(figures["round_ms"]) == sorted([str(small), str(large)])


def test_a_failing_artifact_is_named(matmuls, tmp_path):
    small, _ = matmuls
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    with pytest.raises(DeepSeekError, match=f"latency of {broken}: the measuring process failed"):
        measure_interleaved([small, broken], (1, 16), threads=1, rounds=3, calls=2)


BAD_CALLS = {
    "no artifacts": (([], (1, 16)), {}, "artifacts"),
    "one string": (("a.onnx", (1, 16)), {}, "artifacts"),
    "a missing file": ((["/nonexistent/a.onnx"], (1, 16)), {}, "artifacts"),
    "zero rounds": ((None, (1, 16)), {"rounds": 0}, "rounds"),
    "zero calls": ((None, (1, 16)), {"calls": 0}, "calls"),
    "boolean threads": ((None, (1, 16)), {"threads": True}, "threads"),
}


@pytest.mark.parametrize("case", BAD_CALLS, ids=list(BAD_CALLS))
def test_bad_interleaved_calls_are_refused_before_any_process_starts(case, matmuls):
    (artifacts, shape), options, named = BAD_CALLS[case]
    with pytest.raises(InvalidArgumentError, match=named):
        measure_interleaved(list(matmuls) if artifacts is None else artifacts, shape, **options)


def test_the_same_artifact_twice_is_refused(matmuls):
    with pytest.raises(InvalidArgumentError, match="distinct"):
        measure_interleaved([matmuls[0], str(matmuls[0])], (1, 16))


def test_a_measuring_process_that_dies_is_named(tmp_path):
    """The one child-process protocol (deepseek._core.child): a child that crashes or prints no result is an error
    naming what was measured, with the last lines it wrote to stderr."""
    from deepseek._core.child import last_json, run_child

    with pytest.raises(DeepSeekError, match=r"^latency of x: the measuring process failed \(exit 0\): no output"):
        run_child("deepseek._core.child", {"a": 1}, what="latency of x")  # runs, but measures nothing
    with pytest.raises(DeepSeekError, match=r"^latency of y: the measuring process failed \(exit 1\): .*__main__"):
        run_child("deepseek.bench", {"a": 1}, what="latency of y")  # cannot run at all
    assert last_json('noise\n{"median_ms": 1.5}') == {"median_ms": 1.5} and last_json("[1]\n") == {}
