"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from typing import Any


class DeepSeekError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class InvalidArgumentError(DeepSeekError, ValueError):
    """An argument has the wrong value, type or shape."""


class MissingDependencyError(DeepSeekError, ImportError):
    """An optional package, asset or tool is not installed; the message names what to install."""


class ArtifactError(DeepSeekError, ValueError):
    """A model file is missing, corrupt or of an unknown kind."""


class VerificationError(DeepSeekError, RuntimeError):
    """An exported or compiled artifact does not reproduce the source model within tolerance."""


def invalid(argument: str, got: object, expected: str) -> InvalidArgumentError:
    """Build the standard message: names the argument, the value received and what was expected."""
    return InvalidArgumentError(f"{argument}: got {got!r}, expected {expected}")


def require(module: str, feature: str, pip_spec: str) -> Any:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the feature and what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{feature} needs {pip_spec.split('==')[0]}: pip install {pip_spec} ({e})") from e
