"""Training helpers. ``fit_classifier`` is the minimal supervised loop used by examples, benchmarks and tests."""

from .simple import accuracy, fit_classifier

__all__ = ["accuracy", "fit_classifier"]
