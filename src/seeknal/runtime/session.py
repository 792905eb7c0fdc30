"""A run held from before its compile (``seeknal run``): the state lock, and the state
read under it.

``seeknal run`` compiles and executes in one process. Held this way, the plan is
compiled against the very state it then runs on: no other run can move the environment
in between, so the plan cannot go stale on the way, and the state is read once.

(Opening the warehouse in the background while compiling was measured and dropped: on
a two-core machine DuckDB's start-up competes with the compile for the CPU, and the run
got slower, not faster.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seeknal.state import open_state
from seeknal.state.base import State, StateBackend


@dataclass(frozen=True, slots=True)
class RunSession:
    """A held run: see :func:`held_run`.

    Attributes:
        target: The plan ``target`` the run was held for (from the project's settings).
        project_dir: The project directory, resolved.
        backend: The state backend, locked for the whole session.
        state: The state, read under the lock.
    """

    target: Mapping[str, Any]
    project_dir: Path
    backend: StateBackend
    state: State


@contextlib.contextmanager
def held_run(target: Mapping[str, Any], project_dir: Path) -> Iterator[RunSession | None]:
    """Lock the state of ``target`` (a plan's ``target`` section, from the project's
    settings) and read it; the lock is released on exit.

    A state never written yields ``None`` and locks nothing: taking the lock would
    create it, and a first run whose compile fails must leave nothing behind. The run
    then locks when it executes, as ``seeknal execute`` does.

    Raises:
        StateError: Another run holds the lock, or the state is unreadable.

    Example:
        >>> with held_run(plan_target(config), Path(".")) as session:  # doctest: +SKIP
        ...     plan = compile_project(Path("."), state=session.state).plan
        ...     execute_plan(plan, Path("."), session=session)
    """
    project_dir = Path(project_dir).resolve()
    backend = open_state(target["state"]["backend"], str(project_dir / target["state"]["path"]))
    if not backend.exists():
        yield None
        return
    with backend.lock():
        yield RunSession(dict(target), project_dir, backend, backend.read())
