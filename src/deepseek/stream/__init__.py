"""Real-time features over event-time sliding windows (fraud detection's per-transaction features).

``FeaturePipeline(window_size=3600, features=[...]).process(event)`` gives each event its window features;
``backfill(dataframe)`` gives history the same features through the same code. ``RiskEngine`` scores them with
an online model, alerts above an adaptive threshold and learns from delayed labels. ``save_state`` /
``load_state`` resume a pipeline (JSON, no pickle). ``StreamWorker`` processes scale the features out over Redis
Streams partitioned by key, the window state in Redis (``publish``, ``read_outputs``, ``scale_file``).
"""

from .features import AGGREGATIONS, NAMED, Feature, handbook_features
from .fields import EventFields
from .pipeline import LATE_POLICIES, FeaturePipeline
from .redis_server import LocalRedis
from .redis_streams import RedisStreamConfig, partition_of, publish, read_outputs
from .refit import PeriodicRefit
from .risk import Decision, RiskEngine, ThresholdPolicy
from .scale import scale_file
from .simulate import HANDBOOK_COLUMNS, simulate_transactions
from .worker import StreamWorker, WorkerStats, run_worker_process

__all__ = ["AGGREGATIONS", "HANDBOOK_COLUMNS", "LATE_POLICIES", "NAMED", "Decision", "EventFields", "Feature",
           "FeaturePipeline", "LocalRedis", "PeriodicRefit", "RedisStreamConfig", "RiskEngine", "StreamWorker", "ThresholdPolicy",
           "WorkerStats", "handbook_features", "partition_of", "publish", "read_outputs", "run_worker_process",
           "scale_file", "simulate_transactions"]
