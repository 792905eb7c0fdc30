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
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from seeknal.cachedir import keyed_file, write_cache_file
from seeknal.paths import inside
from seeknal.runtime.connection import open_ahead
from seeknal.runtime.scheduler import thread_stack
from seeknal.state import open_state
from seeknal.state.base import State, StateBackend
from seeknal.state.file import LOCK_FILE, FileStateBackend

T = TypeVar("T")
S = TypeVar("S")

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
        prepared: What ``ready`` returned (the execution's first steps, worked out in
            the helper thread: ``execute.prepare_execution``), or None.
    """

    target: Mapping[str, Any]
    project_dir: Path
    backend: StateBackend
    state: State
    opened: Any = None
    prepared: Any = None

    def take_opened(self) -> Any:
        """The warehouse opened ahead (or None), now the caller's to close."""
        opened, self.opened = self.opened, None
        return opened


@contextlib.contextmanager
def held_compile(
    target: Mapping[str, Any],
    project_dir: Path,
    prepare: Callable[[State | None], T],
    ready: Callable[[State, T], Any] | None = None,
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

        def work() -> tuple[State, T, Any]:
            state = backend.read()
            value = prepare(state)
            return state, value, None if ready is None else ready(state, value)

        (state, value, prepared), opened = _overlapped(
            work, lambda start: open_ahead(target, project_dir, start)
        )
        session = RunSession(dict(target), project_dir, backend, state, opened, prepared)
        with _closing_what_is_left(session):
            yield session, value


@contextlib.contextmanager
def held_run(
    project_dir: Path,
    settle: Callable[[], tuple[S, Mapping[str, Any] | None]],
    prepare: Callable[[State | None, S], T],
    ready: Callable[[State, T], Any] | None = None,
    *,
    use_hint: bool = True,
) -> Iterator[tuple[RunSession | None, T]]:
    """:func:`held_compile` for a run that has not read its project's settings yet.

    ``settle()`` reads them: the settings, and the plan ``target`` they give (None when
    the project file has errors, which the compile reports without locking anything);
    ``prepare(state, settings)`` compiles; ``ready(state, compiled)``, when given, then
    works out what it can of the execution, in the helper thread too (the session's
    ``prepared``).

    The last run of the project left its target behind (:func:`recall_target`, in the
    user's cache). With it, the state lock is taken and the warehouse starts opening at
    once, while the helper thread reads the settings, then the state, and compiles: the
    settings' 1-2 ms come off the run's critical path too. When the settings give
    another target (the project file changed, or has errors), the warehouse is closed
    unused, the lock released, and the run goes on as :func:`held_compile`, with the
    settings already read. A lock another run holds is reported that way too, once
    the settings are read.

    Raises:
        StateError: Another run holds the lock, or the state is unreadable.
        Exception: Whatever ``settle`` or ``prepare`` raised (nothing stays open).
    """
    project_dir = Path(project_dir).resolve()
    hint = recall_target(project_dir) if use_hint else None
    settled: list[tuple[S, Mapping[str, Any] | None]] = []
    if hint is not None:
        backend = FileStateBackend(str(project_dir / hint["state"]["path"]))
        with contextlib.ExitStack() as locked:
            held = False
            try:
                if backend.exists():
                    locked.enter_context(backend.lock())
                    held = True
            except Exception:  # held by another run, unwritable, ...: the settings' own
                pass  # target is tried, and whatever is wrong with it reported as before
            if held:

                def work() -> tuple[State, T, Any] | None:
                    settled.append(settle())
                    if settled[0][1] != hint:
                        return None
                    state = backend.read()
                    value = prepare(state, settled[0][0])
                    return state, value, None if ready is None else ready(state, value)

                outcome, opened = _overlapped(
                    work, lambda start: open_ahead(hint, project_dir, start)
                )
                if outcome is not None:
                    state, value, prepared = outcome
                    session = RunSession(dict(hint), project_dir, backend, state, opened, prepared)
                    with _closing_what_is_left(session):
                        yield session, value
                    return
                if opened is not None:
                    opened.close()
    settings, target = settled[0] if settled else settle()
    if target is None:
        yield None, prepare(None, settings)
        return
    if use_hint and target != hint:
        remember_target(project_dir, target)
    with held_compile(target, project_dir, lambda state: prepare(state, settings), ready) as pair:
        yield pair


@contextlib.contextmanager
def _closing_what_is_left(session: RunSession) -> Iterator[None]:
    """The warehouse opened ahead and never taken over is closed with the session."""
    try:
        yield
    finally:
        left = session.take_opened()
        if left is not None:
            left.close()


def recall_target(project_dir: Path) -> dict[str, Any] | None:
    """The plan target the last run of the project at ``project_dir`` (resolved) used,
    kept in the user's cache; None if there is none, or it is unreadable. Only a guess
    at where to start: :func:`held_run` checks it against the settings."""
    path = keyed_file("runs", str(project_dir))
    if path is None:
        return None
    try:
        entry = json.loads(path.read_bytes())
        if entry["project"] == str(project_dir) and isinstance(entry["target"], dict):
            target: dict[str, Any] = entry["target"]
            state = target["state"]
            if state["backend"] == "file" and _inside_project(state["path"], project_dir):
                return target
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    return None


def _inside_project(state_path: Any, project_dir: Path) -> bool:
    """Whether a state directory and its lock file stay in the project once symlinks
    are followed, as the project file's own must (``compiler.load``): a guess from the
    cache must not lock or create anything the settings could not. (The state itself is
    read only once the settings, checked in full, give the same target.)"""
    if not isinstance(state_path, str):
        return False
    directory = project_dir / state_path
    return all(
        inside(path.resolve(), project_dir) is not None
        for path in (directory, directory / LOCK_FILE)
    )


def remember_target(project_dir: Path, target: Mapping[str, Any]) -> None:
    """Keep ``target`` as the one the project's runs use (a cache: failures are quiet)."""
    path = keyed_file("runs", str(project_dir))
    if path is not None:
        write_cache_file(path, json.dumps({"project": str(project_dir), "target": target}))


def _overlapped(
    work: Callable[[], T],
    open_: Callable[[Callable[[], None]], Any],
) -> tuple[T, Any]:
    """``work()`` in a helper thread while this thread runs ``open_(start)``, which
    calls ``start()`` (starting the helper) just before DuckDB starts the database: its
    own Python runs first, without the helper competing for the GIL. When ``open_``
    opens nothing (it never calls ``start``), the work runs in this thread.

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
                outcome.append(work())
            except BaseException as exc:  # handed to the calling thread
                outcome.append(_Raised(exc))
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
    if isinstance(outcome[0], _Raised):
        if opened is not None:
            opened.close()
        raise outcome[0].exception
    value: T = outcome[0]
    return value, opened


@dataclass(frozen=True, slots=True)
class _Raised:
    exception: BaseException


def _raise_in(thread: threading.Thread, exception: type[BaseException]) -> None:
    """Raise ``exception`` in ``thread`` at its next Python instruction (CPython's
    ``PyThreadState_SetAsyncExc``: what Ctrl-C does to the main thread)."""
    import ctypes

    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exception)
    )
