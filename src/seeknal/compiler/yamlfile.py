"""YAML with positions: plain Python values plus the line and column of every value.

PyYAML's composer keeps marks on every node; we build ordinary dicts/lists from the node
tree and remember where each value (and each mapping key) starts, so every later pass can
point at ``file:line:col``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seeknal.errors import Diagnostic, SourceLocation

if TYPE_CHECKING:
    import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """1-based line and column of a YAML value, and its scalar style (``|``, ``>``, quotes)."""

    line: int
    col: int
    style: str | None = None


@dataclass(slots=True)
class YamlDocument:
    """A parsed YAML file: its data, its text, and the marks of values and keys by path.

    A document from the compile cache keeps its marks packed until something asks where
    a value is (an error message, inline SQL's position): most compiles never do.
    """

    path: str
    text: str
    data: Any
    _values: dict[Path_, Mark] = field(default_factory=dict)
    _keys: dict[Path_, Mark] = field(default_factory=dict)
    _packed: Any = None

    @property
    def values(self) -> dict[Path_, Mark]:
        """Where each value starts, by path."""
        if self._packed is not None:
            self._unpack()
        return self._values

    @property
    def keys(self) -> dict[Path_, Mark]:
        """Where each mapping key starts, by the path of its value."""
        if self._packed is not None:
            self._unpack()
        return self._keys

    def value_mark(self, path: Path_) -> Mark | None:
        """Where the value at ``path`` starts, without unpacking every mark."""
        if self._packed is not None:
            found = self._packed["values"].get(json.dumps(list(path)))
            if found is not None:
                return Mark(*found)
        return self.values.get(path)

    def _unpack(self) -> None:
        packed, self._packed = self._packed, None
        try:
            self._values = {
                tuple(json.loads(where)): Mark(line, col, style)
                for where, (line, col, style) in packed["values"].items()
            }
            self._keys = {
                tuple(json.loads(where)): Mark(line, col)
                for where, (line, col) in packed["keys"].items()
            }
        except (TypeError, ValueError):
            # A damaged entry: the text says where everything is.
            parsed = parse_yaml(self.path, self.text)
            self._values, self._keys = parsed._values, parsed._keys

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


def document_entry(doc: YamlDocument) -> dict[str, Any] | None:
    """The document as JSON values (for the compile cache), or ``None`` when JSON cannot
    hold its data exactly (a date, a NaN)."""
    try:
        text = json.dumps(doc.data, allow_nan=False)
    except (TypeError, ValueError):
        return None
    if json.loads(text) != doc.data:
        return None
    return {
        "data": doc.data,
        "values": {json.dumps(list(p)): [m.line, m.col, m.style] for p, m in doc.values.items()},
        "keys": {json.dumps(list(p)): [m.line, m.col] for p, m in doc.keys.items()},
    }


def document_from_entry(path: str, text: str, value: Any) -> YamlDocument | None:
    """The document of ``text`` a cache entry holds, or ``None`` when it holds none.

    The marks are checked for shape now and unpacked when first asked for.
    """
    if not isinstance(value, dict):
        return None
    data, values, keys = value.get("data"), value.get("values"), value.get("keys")
    if not isinstance(data, dict) or not isinstance(values, dict) or not isinstance(keys, dict):
        return None
    if not all(_is_mark(v, 3) for v in values.values()) or not all(
        _is_mark(k, 2) for k in keys.values()
    ):
        return None
    return YamlDocument(path=path, text=text, data=data, _packed={"values": values, "keys": keys})


def _is_mark(entry: Any, size: int) -> bool:
    return (
        type(entry) is list
        and len(entry) == size
        and type(entry[0]) is int
        and type(entry[1]) is int
        and (size == 2 or entry[2] is None or type(entry[2]) is str)
    )


class YamlSyntaxError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def parse_yaml(path: str, text: str) -> YamlDocument:
    """Parse ``text`` (the content of project file ``path``) keeping positions.

    Raises:
        YamlSyntaxError: with a ``path:line:col`` diagnostic.
    """
    import yaml  # here: a compile that takes every document from its cache never needs it

    # libyaml's parser when PyYAML was built with it (the wheels are): same nodes and marks.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
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
    except yaml.YAMLError as exc:  # the reader: a character YAML does not allow
        raise YamlSyntaxError(_reader_diagnostic(path, text, exc)) from None
    doc = YamlDocument(path=path, text=text, data=None)
    if root is None:
        doc.data = None
        return doc
    doc.data = _Builder(doc).build(root, ())
    return doc


def _reader_diagnostic(path: str, text: str, exc: yaml.YAMLError) -> Diagnostic:
    position = getattr(exc, "position", None)
    line = col = None
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
    character = getattr(exc, "character", None)
    if isinstance(character, str):
        character = ord(character)
    what = f" #x{character:04X}" if isinstance(character, int) else ""
    return Diagnostic(
        f"invalid YAML: the character{what} is not allowed in a YAML file",
        SourceLocation(path, line, col),
        hint="remove it: YAML allows tabs and line breaks, but no other control characters",
    )


# More values than any project file needs: a few aliases nested in each other would
# otherwise expand exponentially (the "billion laughs").
MAX_VALUES = 200_000
_STANDARD_TAG = "tag:yaml.org,2002:"


class _Builder:
    """Plain values from the node tree, recording the marks of every value and key."""

    def __init__(self, doc: YamlDocument) -> None:
        import yaml

        self.doc = doc
        self.ctor = yaml.SafeLoader("")
        self.open: set[int] = set()  # nodes being built: an alias back to one is a cycle
        self.collections = (yaml.MappingNode, yaml.SequenceNode)
        self.mapping, self.scalar_node, self.error = (
            yaml.MappingNode,
            yaml.ScalarNode,
            yaml.YAMLError,
        )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        doc = self.doc
        if id(node) in self.open:
            raise YamlSyntaxError(
                _at(
                    doc,
                    node,
                    "invalid YAML: an alias refers to a value that contains it",
                    "an anchor (&name) cannot be used (*name) inside its own value",
                )
            )
        if len(doc.values) >= MAX_VALUES:
            raise YamlSyntaxError(
                _at(
                    doc,
                    node,
                    f"YAML file too large: more than {MAX_VALUES} values",
                    "aliases (*name) copy their anchor's value each time: use fewer of them",
                )
            )
        style = getattr(node, "style", None)
        doc._values[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1, style)
        if isinstance(node, self.collections):
            self.open.add(id(node))
            try:
                if isinstance(node, self.mapping):
                    return self._mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        return self.scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        doc = self.doc
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node) if isinstance(key_node, self.scalar_node) else None
            key_str = key if isinstance(key, str) else str(key)
            if not isinstance(key_node, self.scalar_node):
                raise YamlSyntaxError(
                    _at(
                        doc,
                        key_node,
                        "invalid YAML: a key must be a plain value",
                        "keys are names, e.g. `name:` or `columns:`",
                    )
                )
            child = (*path, key_str)
            if key_str in out:
                first = doc._keys[child]
                raise YamlSyntaxError(
                    _at(
                        doc,
                        key_node,
                        f"duplicate key '{key_str}'",
                        f"'{key_str}' is already set on line {first.line}; keep one of them",
                    )
                )
            doc._keys[child] = Mark(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key_str] = self.build(value_node, child)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        """The Python value of a scalar; a tag whose value it cannot build is an error."""
        try:
            return self.ctor.construct_object(node, deep=True)
        except (self.error, ValueError, TypeError, KeyError, OverflowError):
            pass
        tag = str(node.tag)
        if tag.startswith(_STANDARD_TAG) and tag[len(_STANDARD_TAG) :] in _KNOWN_TAGS:
            short = "!!" + tag[len(_STANDARD_TAG) :]
            message = f"invalid YAML value {str(node.value)!r} for the tag {short}"
            hint = f"write a valid {short} value, or remove the tag (quote text: '...')"
        else:
            short = tag.replace(_STANDARD_TAG, "!!")
            message = f"unsupported YAML tag '{short}'"
            hint = "seeknal files hold plain YAML values: remove the tag"
        raise YamlSyntaxError(_at(self.doc, node, message, hint)) from None


_KNOWN_TAGS = frozenset({"int", "float", "bool", "null", "str", "timestamp", "binary"})


def _at(doc: YamlDocument, node: yaml.Node, message: str, hint: str | None) -> Diagnostic:
    where = SourceLocation(doc.path, node.start_mark.line + 1, node.start_mark.column + 1)
    return Diagnostic(message, where, hint=hint)
