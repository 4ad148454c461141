"""The one error hierarchy for user mistakes.

The CLI catches `GrowbenchError`, prints its message on one line and exits with code 2; anything else is a bug and
keeps its traceback. It lives in `growth/` because that package is the bottom of the dependency order.
"""


class GrowbenchError(Exception):
    """A user mistake or bad input: reported as one line, exit code 2."""


class ConfigError(GrowbenchError):
    """A config, recipe, plan or suite file is missing, malformed or inconsistent."""


class PlanError(GrowbenchError):
    """A growth plan cannot be applied to this checkpoint."""


class CheckpointError(GrowbenchError):
    """A checkpoint directory is missing, incomplete or corrupt."""


class BackendError(GrowbenchError):
    """An evaluation backend or optional dependency is unavailable or failed to start."""


class DataError(GrowbenchError):
    """Training or benchmark data is missing or unusable."""
