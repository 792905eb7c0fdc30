"""The compiler: a project folder in, a canonical plan out. Pure; never writes state."""

from seeknal.compiler.compile import CompileResult, compile_project, load_config, read_state
from seeknal.compiler.emit import PLAN_SCHEMA_VERSION, write_plan

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "CompileResult",
    "compile_project",
    "load_config",
    "read_state",
    "write_plan",
]
