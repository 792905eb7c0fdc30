"""State: what has been built and what each environment points at."""

from seeknal.state.base import (
    STATE_FORMAT_VERSION,
    State,
    StateBackend,
    empty_state,
    environment_hash,
    environment_record,
)

__all__ = [
    "STATE_FORMAT_VERSION",
    "State",
    "StateBackend",
    "empty_state",
    "environment_hash",
    "environment_record",
    "open_state",
]


def open_state(backend: str, path: str) -> StateBackend:
    """Open a state backend by name; ``path`` is resolved by the caller."""
    from seeknal.state.file import FileStateBackend

    if backend == "file":
        return FileStateBackend(path)
    from seeknal.errors import StateError

    raise StateError(f"unknown state backend {backend!r}", hint="use 'file'")
