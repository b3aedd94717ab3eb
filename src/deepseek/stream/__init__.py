"""Real-time features over event-time sliding windows (fraud detection's per-transaction features).

``FeaturePipeline(window_size=3600, features=[...]).process(event)`` gives each event its window features;
``backfill(dataframe)`` gives history the same features through the same code. ``RiskEngine`` scores them with
an online model, alerts above an adaptive threshold and learns from delayed labels.
"""

from .features import AGGREGATIONS, NAMED, Feature, handbook_features
from .fields import EventFields
from .pipeline import LATE_POLICIES, FeaturePipeline
from .risk import Decision, RiskEngine, ThresholdPolicy
from .simulate import HANDBOOK_COLUMNS, simulate_transactions

__all__ = ["AGGREGATIONS", "HANDBOOK_COLUMNS", "LATE_POLICIES", "NAMED", "Decision", "EventFields", "Feature", "FeaturePipeline",
           "RiskEngine", "ThresholdPolicy", "handbook_features",
           "simulate_transactions"]
