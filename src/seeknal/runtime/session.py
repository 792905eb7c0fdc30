"""A run held from before its compile (``seeknal run``): the state lock, the state read
under it, and the warehouse opened while the plan compiles.

``seeknal run`` compiles and executes in one process. Held this way, the plan is
compiled against the very state it then runs on: no other run can move the environment
in between, so the plan cannot go stale on the way, and the state is read once.

While the run reads the state and compiles, in a helper thread, the calling thread
opens the warehouse the project's settings point at (:func:`held_compile`). DuckDB
starts a database in C++ (about 17 ms, with Python's GIL released), so the Python of a
daily run's compile costs almost nothing on top. The database is opened in the calling
thread on purpose: measured, a DuckDB database started from another thread makes the
batch that follows 2-4 ms slower, which cancelled the gain in earlier attempts. The
execution takes the opened database over when the plan runs on that very warehouse
(``connection.open_ahead``); otherwise, and when the compile fails or the plan is
refused, it is closed unused, which leaves the file as it was.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from seeknal.runtime.connection import open_ahead
from seeknal.runtime.scheduler import thread_stack
from seeknal.state import open_state
from seeknal.state.base import State, StateBackend

T = TypeVar("T")

# While the compile and DuckDB's start overlap, the thread that finished its part gets
# the GIL back within this many seconds instead of Python's usual 5 ms (a waiting
# thread otherwise idles for most of what the overlap gains).
OVERLAP_SWITCH_INTERVAL = 0.0002


@dataclass(slots=True)
class RunSession:
    """A held run: see :func:`held_compile`.

    Attributes:
        target: The plan ``target`` the run was held for (from the project's settings).
        project_dir: The project directory, resolved.
        backend: The state backend, locked for the whole session.
        state: The state, read under the lock.
        opened: The warehouse opened while the plan compiled (``open_ahead``), until
            the execution takes it (:meth:`take_opened`); closed with the session.
    """

    target: Mapping[str, Any]
    project_dir: Path
    backend: StateBackend
    state: State
    opened: Any = None

    def take_opened(self) -> Any:
        """The warehouse opened ahead (or None), now the caller's to close."""
        opened, self.opened = self.opened, None
        return opened


@contextlib.contextmanager
def held_compile(
    target: Mapping[str, Any],
    project_dir: Path,
    prepare: Callable[[State | None], T],
) -> Iterator[tuple[RunSession | None, T]]:
    """Lock the state of ``target`` (a plan's ``target`` section, from the project's
    settings), read it and run ``prepare(state)`` (the compile) under the lock; yield
    the session and what ``prepare`` returned. The lock is released on exit.

    ``prepare`` runs in a helper thread while this thread opens the warehouse (see the
    module's docstring); the session holds it until the execution takes it, and closes
    it on exit otherwise.

    A state never written gets ``prepare(None)``, in this thread, and yields no session:
    nothing is locked or opened, since taking the lock would create the state, and a
    first run whose compile fails must leave nothing behind. The run then locks when it
    executes, as ``seeknal execute`` does.

    Raises:
        StateError: Another run holds the lock, or the state is unreadable.
        Exception: Whatever ``prepare`` raised (the warehouse opened is closed).

    Example:
        >>> with held_compile(target, Path("."), compile) as (session, result):  # doctest: +SKIP
        ...     execute_plan(None, Path("."), text=result.text, session=session)
    """
    project_dir = Path(project_dir).resolve()
    backend = open_state(target["state"]["backend"], str(project_dir / target["state"]["path"]))
    if not backend.exists():
        yield None, prepare(None)
        return
    with backend.lock():
        state, value, opened = _overlapped(
            backend.read, prepare, lambda start: open_ahead(target, project_dir, start)
        )
        session = RunSession(dict(target), project_dir, backend, state, opened)
        try:
            yield session, value
        finally:
            left = session.take_opened()
            if left is not None:
                left.close()


def _overlapped(
    read: Callable[[], State],
    prepare: Callable[[State], T],
    open_: Callable[[Callable[[], None]], Any],
) -> tuple[State, T, Any]:
    """``prepare(read())`` in a helper thread while this thread runs ``open_(start)``,
    which calls ``start()`` (starting the helper) just before DuckDB starts the
    database: its own Python runs first, without the helper competing for the GIL. When
    ``open_`` opens nothing (it never calls ``start``), the work runs in this thread.

    Ctrl-C (a ``KeyboardInterrupt`` in this thread) is raised in the helper too, and
    waited for: the compile stops where it is, as it would in this thread, and no
    thread outlives the run (one stopped by the interpreter's exit inside DuckDB would
    abort the process).
    """
    outcome: list[Any] = []
    # Set when the helper's work is over. Waited for instead of Thread.join: in Python
    # 3.11 a join interrupted by Ctrl-C can mark a thread stopped while it still runs.
    done = threading.Event()

    def helper() -> None:
        try:
            try:
                state = read()
                outcome.append((state, prepare(state)))
            except BaseException as exc:  # handed to the calling thread
                outcome.append(exc)
            finally:
                done.set()
        except BaseException:  # a forwarded Ctrl-C that arrived as the work ended
            pass

    thread = threading.Thread(target=helper, name="seeknal-compile", daemon=True)

    def start() -> None:
        with thread_stack():  # the compile recurses as deep as the SQL nests
            thread.start()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(OVERLAP_SWITCH_INTERVAL)
    opened = None
    try:
        opened = open_(start)
        if thread.ident is None:
            helper()
        else:
            done.wait()
    except BaseException:
        if opened is not None:
            opened.close()
        if thread.ident is not None and not done.is_set():
            _raise_in(thread, KeyboardInterrupt)
            # The exception may land in the helper as it sets `done` (it is Python
            # code too), and `done` then stays unset: wait for either.
            while not done.wait(0.05) and thread.is_alive():
                pass
        raise
    finally:
        sys.setswitchinterval(previous)
    if isinstance(outcome[0], BaseException):
        if opened is not None:
            opened.close()
        raise outcome[0]
    state, value = outcome[0]
    return state, value, opened


def _raise_in(thread: threading.Thread, exception: type[BaseException]) -> None:
    """Raise ``exception`` in ``thread`` at its next Python instruction (CPython's
    ``PyThreadState_SetAsyncExc``: what Ctrl-C does to the main thread)."""
    import ctypes

    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exception)
    )
