"""Typed errors raised by the library; the CLI turns each into a one-line message with advice."""

from __future__ import annotations


class FrontloadError(Exception):
    """A problem the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(FrontloadError):
    """A recipe, plan or option is invalid; raised before any work starts."""


class InputError(FrontloadError):
    """An input file is missing, unreadable or malformed."""


class DataError(FrontloadError):
    """Data on disk is inconsistent (corrupted shard, wrong tokenizer, empty corpus)."""


class StageNotReady(FrontloadError):
    """A stage needs the output of an earlier stage that is not in the workspace yet."""


class SolverError(FrontloadError):
    """The allocation problem is infeasible or the solver failed."""


class TrainingError(FrontloadError):
    """Training stopped (NaN loss, out of memory, checkpoint mismatch)."""
