"""The runtime: verify a plan artifact and execute exactly it. Never imports the compiler."""

from seeknal.runtime.artifact import (
    load_plan,
    read_plan,
    read_plan_text,
    verify_plan,
    verify_plan_text,
)
from seeknal.runtime.events import Event, EventKind, RunResult
from seeknal.runtime.execute import execute_plan
from seeknal.runtime.promote import view_name

__all__ = [
    "Event",
    "EventKind",
    "RunResult",
    "execute_plan",
    "load_plan",
    "read_plan",
    "read_plan_text",
    "verify_plan",
    "verify_plan_text",
    "view_name",
]
