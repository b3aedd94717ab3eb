"""The suite's background lane (tests/test_benchmarks_smoke.py): a test run in a pytest process of its own reports
exactly what happened to it, and the runner hands each test's outcome to whoever waits for it."""

from __future__ import annotations

from test_benchmarks_smoke import SmokeRunner, run_test

SAMPLE = '''
import pytest

def test_ok(tmp_path):
    (tmp_path / "x").write_text("written")

def test_broken():
    x = 2
    assert x == 3, "arithmetic"

def test_not_here():
    pytest.skip("needs a GPU")
'''


def test_each_outcome_of_a_test_in_its_own_process_is_reported(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    passed = run_test("test_sample.py::test_ok", tmp_path / "a", root=tmp_path)
    assert passed.status == "passed", passed
    assert (tmp_path / "a" / "tmp").is_dir()  # its own base folder, not a numbered one beside the suite's
    failed = run_test("test_sample.py::test_broken", tmp_path / "b", root=tmp_path)
    assert failed.status == "failed" and "arithmetic" in failed.reason and "assert 2 == 3" in failed.output
    skipped = run_test("test_sample.py::test_not_here", tmp_path / "c", root=tmp_path)
    assert skipped.status == "skipped" and "needs a GPU" in skipped.reason
    missing = run_test("test_sample.py::test_gone", tmp_path / "d", root=tmp_path)
    assert missing.status == "error" and "ran 0 tests" in missing.reason


def test_the_runner_gives_each_waiting_test_its_own_outcome(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    runner = SmokeRunner([], ("test_sample.py::test_broken", "test_sample.py::test_ok"), root=tmp_path)
    runner.start()
    try:
        assert runner.outcome("test_sample.py::test_ok").status == "passed"
        assert runner.outcome("test_sample.py::test_broken").status == "failed"
        assert runner.wait()[2]  # nothing written into benchmarks/results
        assert set(runner.seconds) == {"test_sample.py::test_broken", "test_sample.py::test_ok"}
        assert runner.finished()
    finally:
        runner.cleanup()
