"""The one error hierarchy of seeknal.

Only the CLI catches these, prints them and exits; library code raises them. Every error
knows its exit code: 2 for a user's mistake (bad project, bad plan), 1 for a failed run.
This module imports nothing else from seeknal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

USER_ERROR = 2
RUN_FAILED = 1


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in a project file: path relative to the project, 1-based line and column."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.col is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a project: an error or a warning, with where and what to do."""

    message: str
    location: SourceLocation | None = None
    hint: str | None = None
    severity: str = "error"
    excerpt: str | None = None

    def render(self) -> str:
        """Render like a compiler: ``path:line:col: error: message``, excerpt, hint."""
        where = f"{self.location}: " if self.location else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.excerpt:
            lines.append(self.excerpt)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


# A longer source line is shown as the part of this width around the column.
EXCERPT_WIDTH = 120


def excerpt_at(text: str, line: int | None, col: int | None) -> str | None:
    """Return the source line ``line`` (1-based) of ``text`` with a caret under ``col``;
    a line longer than ``EXCERPT_WIDTH`` shows only that much of it around ``col``.

    Example:
        >>> print(excerpt_at("SELECT 1,\nFROM t", 2, 1))
           2 | FROM t
             | ^
    """
    if line is None:
        return None
    source_lines = text.splitlines()
    if not 1 <= line <= len(source_lines):
        return None
    src = source_lines[line - 1]
    at = col - 1 if col is not None and col >= 1 else None
    if len(src) > EXCERPT_WIDTH:
        start = 0 if at is None else min(max(at - EXCERPT_WIDTH // 2, 0), len(src) - EXCERPT_WIDTH)
        end = start + EXCERPT_WIDTH
        before, after = ("..." if start else ""), ("..." if end < len(src) else "")
        src = before + src[start:end] + after
        at = None if at is None else at - start + len(before)
    gutter = f"{line:>4} | "
    out = f"{gutter}{src}"
    if at is not None:
        out += "\n" + " " * (len(gutter) - 2) + "| " + " " * at + "^"
    return out


def excerpt_of_file(root: Path, location: SourceLocation) -> str | None:
    """Read the file behind ``location`` (relative to ``root``) and excerpt its line.

    Never a file outside ``root``: an error about a symlink that leads out of the
    project must not print a line of what it leads to.
    """
    path = root / location.path
    try:
        if not path.resolve().is_relative_to(root.resolve()):
            return None
        # A file that is not UTF-8 is itself an error: excerpt what can be shown.
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return excerpt_at(text, location.line, location.col)


class SeeknalError(Exception):
    """Base of every error seeknal raises on purpose: a message, an optional hint."""

    exit_code = USER_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def render(self) -> str:
        out = f"error: {self}"
        if self.hint:
            out += f"\nhint: {self.hint}"
        return out


class ProjectError(SeeknalError):
    """One problem in the user's project, with its location."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic

    def render(self) -> str:
        return self.diagnostic.render()


class CompileFailed(SeeknalError):
    """Every error found in one compile; shows the first 20, then '… and N more'."""

    shown = 20

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"compile failed with {len(errors)} error(s)")

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def render(self) -> str:
        errors = self.errors
        parts = [d.render() for d in errors[: self.shown]]
        if len(errors) > self.shown:
            parts.append(f"… and {len(errors) - self.shown} more")
        noun = "error" if len(errors) == 1 else "errors"
        parts.append(f"compile failed: {len(errors)} {noun}")
        return "\n\n".join(parts)


class PlanError(SeeknalError):
    """A plan that cannot be executed: unreadable, tampered, too new, or stale."""


class StaleError(PlanError):
    """The state changed since the plan was compiled."""


class StateError(SeeknalError):
    """The state backend is unreadable, locked by another run, or of a newer format."""


class EngineError(SeeknalError):
    """A statement the warehouse refused, or a warehouse that cannot be opened.

    Engines translate their driver's exceptions into this, so the runtime can tell a
    failing node (recorded, the run goes on) from a bug (propagates).
    """

    exit_code = RUN_FAILED

    def __init__(self, message: str, *, sql: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.sql = sql


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """One node that failed during a run, with the SQL that failed."""

    node: str
    message: str
    sql_excerpt: str = ""
    skipped: tuple[str, ...] = field(default_factory=tuple)
    file: str | None = None  # the node's YAML file, relative to the project


class ExecutionError(SeeknalError):
    """A run in which one or more nodes failed; completed work is kept."""

    exit_code = RUN_FAILED

    def __init__(self, failures: Iterable[NodeFailure], skipped: Iterable[str] = ()) -> None:
        self.failures = list(failures)
        self.skipped = sorted(skipped)
        super().__init__(f"{len(self.failures)} node(s) failed")

    def render(self) -> str:
        parts = []
        for f in self.failures:
            where = f"{f.file}: " if f.file else ""
            part = f"{where}error: node {f.node} failed: {f.message}"
            if f.sql_excerpt:
                part += "\n" + "\n".join("    " + ln for ln in f.sql_excerpt.splitlines())
            parts.append(part)
        if self.skipped:
            parts.append("skipped (upstream failed): " + ", ".join(self.skipped))
        parts.append("hint: completed work is kept; fix the problem and run again to resume")
        return "\n".join(parts)
