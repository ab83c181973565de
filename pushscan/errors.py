"""pushscan's own errors. Each carries the exit code the CLI ends with.

Only these may escape the core; anything a hostile capture does becomes either one
of these (the input cannot be read at all) or an entry in ``inputs[].errors``
(the part that was read is still analysed).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # used by `check`: a trace failed its policy
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_OUTPUT = 5  # an output cannot be written (disk full, I/O error, read-only, closed)


class PushscanError(Exception):
    """Base class: a one-line message and the exit code it maps to."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PushscanError):
    """The caller asked for something that cannot be done (bad option, missing tool)."""

    exit_code = EXIT_USAGE


class InputError(PushscanError):
    """An input cannot be read at all: missing, unreadable, not a capture."""

    exit_code = EXIT_INPUT

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class OutputError(PushscanError):
    """An output cannot be created or written: nothing partial is left of it."""

    exit_code = EXIT_OUTPUT


class CaptureDamaged(Exception):
    """Raised inside a reader when the rest of a file cannot be read.

    Not a user-facing error: the source records it in ``inputs[].errors`` and stops
    reading that file, keeping every packet read before it.
    """
