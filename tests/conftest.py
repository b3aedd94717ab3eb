import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Inductor compiles in this process instead of warming up a pool of compile workers (each a fresh interpreter
# importing torch) in every test process and smoke script: on 2 cores shared by two runners the pool buys nothing
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
# One compute thread per process, sleeping when idle, here and in every process a test starts: the benchmark smoke
# runs (below) keep the other core busy, and a second OpenMP / ONNX Runtime thread that has to wait for a core
# at every parallel region made small-tensor work (AdaRound's 400 steps, training on digits) several times slower
# on 2 cores (the optimize search: 124 s of CPU with 2 threads, 39 s with one, AMD EPYC Zen 3)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# Tests that go first: the one that reads SmolLM2's GGUF file (30 s) fills the cache every later reader uses
FIRST_TESTS = ("tests/test_assets.py::test_smollm2_is_read_from_gguf_once_then_from_its_cached_float_folder_unchanged",)


def pytest_collection_modifyitems(session, config, items):
    """``FIRST_TESTS`` go first. The benchmark smoke tests go last: their scripts run in the background meanwhile
    (below). With them, the longest self-contained tests (``BACKGROUND_TESTS``) run in that lane too, and go just
    before them here."""
    items.sort(key=lambda item: item.nodeid not in FIRST_TESTS)  # stable: the rest keep their order
    smoke = [i for i in items if i.module.__name__.endswith("test_benchmarks_smoke") and getattr(i, "callspec", None)]
    if smoke:
        from test_benchmarks_smoke import BACKGROUND_TESTS

        background = [i for i in items if i.nodeid in BACKGROUND_TESTS]
        for item in background:
            item._deepseek_background = True
            item.add_marker(pytest.mark.timeout(3600))  # it waits for its run in the lane, which may be queued
        rest = [i for i in items if i not in smoke and i not in background]
        items[:] = rest + background + smoke


def pytest_collection_finish(session):
    """Start the selected benchmark scripts' smoke runs and background tests now, beside the rest of the suite."""
    from test_benchmarks_smoke import SmokeRunner, selected_scripts

    scripts = selected_scripts(session.items)
    if scripts and not session.config.option.collectonly:
        tests = tuple(i.nodeid for i in session.items if getattr(i, "_deepseek_background", False))
        runner = SmokeRunner(scripts, tests)
        runner.start()
        session.config._deepseek_smoke_runner = runner


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test that ran in the background lane reports that run's outcome instead of running again here."""
    runner = getattr(pyfuncitem.config, "_deepseek_smoke_runner", None)
    if runner is None or not getattr(pyfuncitem, "_deepseek_background", False):
        return None
    outcome = runner.outcome(pyfuncitem.nodeid)
    if outcome.status == "skipped":
        pytest.skip(outcome.reason)
    if outcome.status != "passed":
        pytest.fail(f"in its own pytest process (the background lane): {outcome.reason}\n{outcome.output[-8000:]}",
                    pytrace=False)
    return True


def pytest_runtest_setup(item):
    """Once the smoke runs are done, the tests left take every core (a torch thread each, here and in the processes
    they start): on 2 cores the smoke runs end well before the foreground does. Switched between test files only,
    so that a module's fixtures and tests see one thread count (results replayed exactly stay exact)."""
    runner = getattr(item.config, "_deepseek_smoke_runner", None)
    first_of_module = getattr(item.config, "_deepseek_module", None) is not item.module
    item.config._deepseek_module = item.module
    if runner is None or getattr(item.config, "_deepseek_all_cores", False) or not first_of_module \
            or not runner.finished():
        return
    item.config._deepseek_all_cores = True
    cores = str(os.cpu_count() or 1)
    os.environ["OMP_NUM_THREADS"] = cores
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(cores))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Each background job's wall time (long tests, smoke scripts), the slowest first: where the suite's time goes."""
    runner = getattr(config, "_deepseek_smoke_runner", None)
    if runner is not None and runner.seconds:
        terminalreporter.section("background lane: long tests and benchmark smoke runs (wall seconds)")
        for job, seconds in sorted(runner.seconds.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:8.1f}  {job}")


@pytest.fixture(scope="session")
def tiny_cnn():
    """A small real torchvision-style CNN (random weights): fast to export and run."""
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture(scope="session")
def image_input():
    import torch

    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _check_printed_table(table, *words):
    """``print(table)`` gives a readable box-drawn table holding ``words`` (not ``<rich.table.Table object ...>``),
    and rich still renders the same object."""
    import io

    from rich.console import Console

    text = str(table)
    assert "object at 0x" not in text and "│" in text, text[:200]
    for word in words:
        assert word in text, (word, text[:500])
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    assert all(word in console.file.getvalue() for word in words)
    return text


@pytest.fixture
def printed_table():
    return _check_printed_table
