"""How much the suite's background lane saves by forking its jobs (tests/_forkserver.py) instead of starting a fresh
interpreter for each: runs the given benchmark scripts with ``--smoke`` both ways, one after the other, and prints
the wall seconds of each. Not a README figure: a measurement of the test suite's own machinery.

    python benchmarks/suite_lane_fork.py [bench_qat bench_moe bench_checkpoint]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_benchmarks_smoke import ForkServer, _run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", default=["bench_qat", "bench_moe", "bench_checkpoint"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        server = ForkServer(ROOT, Path(work) / "server.log")
        print(f"fork server ready (imports done) in {time.perf_counter() - started:.1f} s", flush=True)
        try:
            for name in args.scripts:
                for mode, using in (("fresh", None), ("forked", server)):
                    folder = Path(tempfile.mkdtemp(dir=work))
                    started = time.perf_counter()
                    done = _run(ROOT / "benchmarks" / f"{name}.py", folder, using)
                    status = done if isinstance(done, str) else f"exit {done.returncode}"
                    print(f"{name:24s} {mode:7s} {time.perf_counter() - started:6.1f} s  {status}", flush=True)
        finally:
            server.close()


if __name__ == "__main__":
    main()
