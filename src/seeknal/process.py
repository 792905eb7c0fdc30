"""How a seeknal command-line process ends: what it leaves for the operating system.

A run's last work is durable before its command returns: every batch committed, the
warehouse checkpointed (its write-ahead log folded into the file and removed), the state
written and synced. What remains is teardown: DuckDB closing a database frees its buffers
and its catalog of built-in functions (4-6 ms for the benchmark's two-node warehouse),
then the interpreter unloads every module (about 20 ms with DuckDB loaded). None of it
changes a byte on disk, so the command line skips it: the entry point arms this module
(:func:`arm`), a finished engine leaves its open database here (:func:`leave`) instead
of closing it, and so does the state lock it ran under, and the entry point then ends
the process at once (:func:`end`). The kernel releases the files and their locks, as it
does for a run that crashed, which the runtime is built to survive anyway.

Nothing changes for seeknal used as a library, or in a test runner: unless armed,
:func:`leaving` is False and every engine and lock is closed as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NoReturn

_armed = False
_left: list[Any] = []
_kept: list[Any] = []


def arm() -> None:
    """Called by the console entry point only: this process ends when its command does."""
    global _armed
    _armed = True


def leaving() -> bool:
    """Whether what a command leaves open is released by the process's end (armed)."""
    return _armed


def leave(*resources: Any) -> None:
    """Keep ``resources`` (an open database, a held lock's descriptor) referenced until
    the process ends, so that nothing closes them before the kernel does."""
    _left.extend(resources)


def left() -> bool:
    """Whether anything was left for the process's end."""
    return bool(_left)


def keep(*objects: Any) -> None:
    """In an armed process, keep ``objects`` (a run's plan and state, megabytes of
    Python objects in a large project) referenced until the process ends: freeing them
    one by one as the command returns is work nobody waits for (about 7 ms at 1,000
    nodes). Nothing, unarmed."""
    if _armed:
        _kept.extend(objects)


def end(code: int | str | None) -> NoReturn:
    """Flush the standard streams and end the process with ``code`` (as ``sys.exit``
    reads it), without the interpreter's teardown."""
    if isinstance(code, str):
        if sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(code + "\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        # None when the process started with that descriptor closed; a reader gone, a
        # stream closed: as at the interpreter's own exit, nothing more to tell.
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code or 0)
