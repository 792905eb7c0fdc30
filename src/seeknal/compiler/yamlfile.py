"""YAML with positions: plain Python values plus the line and column of every value.

PyYAML's composer keeps marks on every node; we build ordinary dicts/lists from the node
tree and remember where each value (and each mapping key) starts, so every later pass can
point at ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from seeknal.errors import Diagnostic, SourceLocation

Path_ = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (the wheels are): same nodes and marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Mark:
    """1-based line and column of a YAML value, and its scalar style (``|``, ``>``, quotes)."""

    line: int
    col: int
    style: str | None = None


@dataclass(slots=True)
class YamlDocument:
    """A parsed YAML file: its data, its text, and the marks of values and keys by path."""

    path: str
    text: str
    data: Any
    values: dict[Path_, Mark] = field(default_factory=dict)
    keys: dict[Path_, Mark] = field(default_factory=dict)

    def location(self, path: Path_ = (), *, key: bool = False) -> SourceLocation:
        """Where the value (or with ``key=True`` the key) at ``path`` starts.

        Falls back to the nearest enclosing value that has a mark.
        """
        marks = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in marks:
                m = marks[probe]
                return SourceLocation(self.path, m.line, m.col)
            if key and probe in self.values:
                m = self.values[probe]
                return SourceLocation(self.path, m.line, m.col)
            probe = probe[:-1]
        m = self.values.get((), Mark(1, 1))
        return SourceLocation(self.path, m.line, m.col)


class YamlSyntaxError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def parse_yaml(path: str, text: str) -> YamlDocument:
    """Parse ``text`` (the content of project file ``path``) keeping positions.

    Raises:
        YamlSyntaxError: with a ``path:line:col`` diagnostic.
    """
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(
            Diagnostic(
                f"invalid YAML: {problem}{context}",
                SourceLocation(path, line, col),
                hint="check indentation and quoting near this position",
            )
        ) from None
    doc = YamlDocument(path=path, text=text, data=None)
    if root is None:
        doc.data = None
        return doc
    constructor = yaml.SafeLoader("")
    doc.data = _build(root, (), doc, constructor)
    return doc


def _build(node: yaml.Node, path: Path_, doc: YamlDocument, ctor: yaml.SafeLoader) -> Any:
    style = getattr(node, "style", None)
    doc.values[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1, style)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            key_str = key if isinstance(key, str) else str(key)
            child = (*path, key_str)
            if key_str in out:
                first = doc.keys[child]
                raise YamlSyntaxError(
                    Diagnostic(
                        f"duplicate key '{key_str}'",
                        SourceLocation(
                            doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                        ),
                        hint=f"'{key_str}' is already set on line {first.line}; keep one of them",
                    )
                )
            doc.keys[child] = Mark(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key_str] = _build(value_node, child, doc, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, ctor) for i, item in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)
