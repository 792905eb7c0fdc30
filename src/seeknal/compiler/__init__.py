"""The compiler: a project folder in, a canonical plan out. Pure; never writes state."""

from seeknal.compiler.change import (
    Change,
    ChangeCategory,
    ChangeDetail,
    EditKind,
    QueryError,
    categorize_change,
)
from seeknal.compiler.compile import (
    CompileResult,
    compile_project,
    load_config,
    project_settings,
    read_state,
)
from seeknal.compiler.emit import PLAN_SCHEMA_VERSION, plan_target, write_plan

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "Change",
    "ChangeCategory",
    "ChangeDetail",
    "CompileResult",
    "EditKind",
    "QueryError",
    "categorize_change",
    "compile_project",
    "load_config",
    "plan_target",
    "project_settings",
    "read_state",
    "write_plan",
]
