"""The suite's background lane (tests/test_benchmarks_smoke.py): a test run in a pytest process of its own reports
exactly what happened to it, and the runner hands each test's outcome to whoever waits for it."""

from __future__ import annotations

import pytest

from test_benchmarks_smoke import ForkServer, SmokeRunner, run_test

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


@pytest.fixture(params=["fresh process", "fork server"])
def server(request, tmp_path):
    if request.param == "fresh process":
        yield None
        return
    server = ForkServer(tmp_path, tmp_path / "server.log")
    yield server
    server.close()


def test_each_outcome_of_a_test_in_its_own_process_is_reported(tmp_path, server):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    passed = run_test("test_sample.py::test_ok", tmp_path / "a", root=tmp_path, server=server)
    assert passed.status == "passed", passed
    assert (tmp_path / "a" / "tmp").is_dir()  # its own base folder, not a numbered one beside the suite's
    failed = run_test("test_sample.py::test_broken", tmp_path / "b", root=tmp_path, server=server)
    assert failed.status == "failed" and "arithmetic" in failed.reason and "assert 2 == 3" in failed.output
    skipped = run_test("test_sample.py::test_not_here", tmp_path / "c", root=tmp_path, server=server)
    assert skipped.status == "skipped" and "needs a GPU" in skipped.reason
    missing = run_test("test_sample.py::test_gone", tmp_path / "d", root=tmp_path, server=server)
    assert missing.status == "error" and "ran 0 tests" in missing.reason


def test_a_forked_script_runs_as_a_fresh_one_would(tmp_path):
    """argv, __main__, the script's folder on sys.path, its own environment and exit handlers, its exit status and
    output; on timeout its whole process group is killed and the server goes on."""
    (tmp_path / "helper_mod.py").write_text("VALUE = 41\n")
    (tmp_path / "script.py").write_text(
        "import atexit, os, sys\nfrom helper_mod import VALUE\n"
        "atexit.register(lambda: print('bye'))\n"
        "print(__name__, sys.argv[1:], VALUE + 1, os.environ['JOB_VAR'], os.getcwd())\n"
        "print('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    (tmp_path / "sleeper.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\ntime.sleep(60)\n")
    server = ForkServer(tmp_path, tmp_path / "server.log")
    try:
        work = tmp_path / "work"
        work.mkdir()
        done = server.run("script", [str(tmp_path / "script.py"), "--smoke"], cwd=work, log=work / "run",
                          timeout=60, env={"JOB_VAR": "set"})
        assert done.returncode == 3 and "to stderr" in done.stderr
        assert done.stdout.splitlines() == [f"__main__ ['--smoke'] 42 set {work}", "bye"]
        assert server.run("script", [str(tmp_path / "sleeper.py")], cwd=work, log=work / "sleep", timeout=2) is None
        again = server.run("script", [str(tmp_path / "script.py"), "x"], cwd=work, log=work / "run2", timeout=60,
                           env={"JOB_VAR": "again"})
        assert again.returncode == 3 and "['x'] 42 again" in again.stdout
    finally:
        server.close()


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
