"""Where a project's files may be: one rule for the compiler and the runtime.

A data file lies in the project, or in a directory the project file lists under
``allow_external_data``. The compiler declares only such files in a plan; the runtime
refuses any other (a plan edited by hand), and grants commands that read a source in
place only such files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def inside(path: Path, directory: Path) -> str | None:
    """``path`` relative to ``directory`` (both resolved) when it is inside, else None.

    Example:
        >>> inside(Path("/p/data/x.csv"), Path("/p")), inside(Path("/etc/passwd"), Path("/p"))
        ('data/x.csv', None)
    """
    try:
        return path.relative_to(directory).as_posix()
    except ValueError:
        return None


def external_directories(root: Path, entries: Iterable[str]) -> tuple[Path, ...]:
    """The directories ``allow_external_data`` lists, resolved (relative to ``root``, or
    absolute as written)."""
    return tuple((root / entry).resolve() for entry in entries)
