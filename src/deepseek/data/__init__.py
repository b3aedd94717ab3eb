"""Data cleaning before training or compression: rule-based filters with a reason for every dropped row.

``DataCleaner(text_columns=['content'], rules={'length': (10, 512), 'language': 'en', 'toxicity': {'threshold':
0.3}}).process(raw)`` keeps the rows every rule accepts, in ``raw``'s own type; ``annotate`` shows why each row
would be dropped; ``process_file`` streams a file of any size with an exclusion file for audit. ``DataProfiler``
reports types, missing values, distributions, duplicates and outliers, and suggests cleaner rules.
"""

from .cleaner import CleaningReport, DataCleaner
from .profiler import DataProfiler, Profile
from .rules import CleaningRules, LanguageRule, LengthRule, ToxicityRule

__all__ = ["CleaningReport", "CleaningRules", "DataCleaner", "DataProfiler", "LanguageRule", "LengthRule", "Profile", "ToxicityRule"]
