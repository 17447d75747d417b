"""User-facing errors.

Everything a user can get wrong (a config field, a budget string, a file) raises a subclass of
:class:`NasWidthError` whose message is one line naming the bad value. The CLI turns these into
exit code 2 without a traceback; library users can catch them as ``ValueError``.
"""

from __future__ import annotations

__all__ = ["BudgetError", "ConfigError", "NasWidthError"]


class NasWidthError(ValueError):
    """Bad input from the user: the message is one line that names the bad value."""


class ConfigError(NasWidthError):
    """A :class:`~nas_width.MixerConfig` field or config file is invalid."""


class BudgetError(NasWidthError):
    """A budget string is malformed, or no shape meets it."""
