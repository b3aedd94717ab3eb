"""ydata-profiling's minimal report on a Parquet table, timed; run by bench_data.py inside ydata's own environment
(``make peers-data`` builds it: its pins downgrade numpy, pandas, matplotlib and scipy, so it cannot share ours).

    .venv-ydata/bin/python benchmarks/peers/ydata_minimal.py TABLE.parquet  ->  one JSON line on stdout
"""

import json
import resource
import sys
import time

import pandas as pd
from ydata_profiling import ProfileReport, __version__

frame = pd.read_parquet(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
report = ProfileReport(frame, minimal=True, progress_bar=False)
report.to_json()  # the statistics are computed lazily: asking for the report runs them
seconds = time.perf_counter() - t0
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"version": __version__, "rows": len(frame), "columns": frame.shape[1], "seconds": seconds,
                  "peak_rss_growth_mb": grown / 1024}))
