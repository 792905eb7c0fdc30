"""JSON Schema errors as diagnostics a person can act on.

jsonschema's own messages print Python values (``[{'name': 'uid'}] is not of type
'object'``). Each error here says, in the words of the YAML file, what is wrong, where,
and what to write instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.yamlfile import YamlDocument
from seeknal.errors import Diagnostic

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

Path_ = tuple[str | int, ...]

_TYPE_WORDS = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "empty",
}
_REQUIRED_HINTS = {
    "name": "every node needs `name:`; its id is `kind.name`",
    "kind": "every node needs `kind:` (source, transform, seed or rule)",
    "table": "a source needs `table:` (a file path relative to the project, or a table name)",
    "source": "a source needs `source:` (csv, parquet, json or table)",
    "path": "a seed needs `path:` to a CSV file in the project",
    "ref": "an input is `- ref: kind.name`",
}
_IDENTIFIER_HINT = "use letters, digits and underscores, starting with a letter or underscore"


@dataclass(frozen=True, slots=True)
class _Context:
    doc: YamlDocument
    schema_name: str
    kind: str | None  # the node's kind, when it has a valid one


def schema_diagnostic(doc: YamlDocument, err: ValidationError, schema_name: str) -> Diagnostic:
    """Turn a JSON Schema error into a ``path:line:col`` diagnostic a person can act on."""
    data = doc.data if isinstance(doc.data, dict) else {}
    kind = data.get("kind") if isinstance(data.get("kind"), str) else None
    ctx = _Context(doc, schema_name, kind)
    handler = _HANDLERS.get(str(err.validator), _other)
    return handler(ctx, err, tuple(err.absolute_path))


def most_useful(errors: Sequence[ValidationError]) -> ValidationError:
    """The error to show when a file has several: on a concrete key, the deepest first."""
    order = {
        "required": 0,
        "additionalProperties": 1,
        "enum": 2,
        "pattern": 3,
        "oneOf": 4,
        "type": 5,
        "minLength": 6,
        "uniqueItems": 7,
    }

    def rank(e: ValidationError) -> tuple[int, int]:
        return (order.get(str(e.validator), 9), -len(e.absolute_path))

    return min(errors, key=rank)


def show(value: Any) -> str:
    """A YAML value as the user wrote it (no Python repr of mappings or lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return "'" + (value if len(value) <= 40 else value[:37] + "...") + "'"
    if isinstance(value, int | float):
        return str(value)
    return "a mapping" if isinstance(value, dict) else "a list"


def _found(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, bool):
        return show(value)
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"the string {show(value)}"


def place(path: Path_) -> str:
    """Where in the file, in the user's words: "column 'uid'", "input 2", "`state.path`"."""
    if not path:
        return "the file"
    head, rest = path[0], path[1:]
    if head == "columns" and rest:
        column = f"column '{rest[0]}'"
        return column if len(rest) == 1 else f"`{rest[1]}` of {column}"
    if head == "inputs" and rest and isinstance(rest[0], int):
        item = f"input {rest[0] + 1}"
        return item if len(rest) == 1 else f"`{rest[1]}` of {item}"
    if head == "options" and len(rest) == 1:
        return f"option '{rest[0]}'"
    if head == "tags" and len(rest) == 1 and isinstance(rest[0], int):
        return f"tag {rest[0] + 1}"
    return "`" + ".".join(str(p) for p in path) + "`"


def _unknown_key(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    allowed = list(err.schema.get("properties", {}))
    extras = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
    key = extras[0] if extras else "?"
    where = ctx.doc.location((*path, key), key=True)
    if not path and key == "inputs" and ctx.kind in ("source", "seed"):
        reads = "its file (`table:`)" if ctx.kind == "source" else "its CSV file (`path:`)"
        return Diagnostic(
            f"a {ctx.kind} reads no node: `inputs` is only for transforms and rules",
            where,
            hint=f"remove `inputs`; a {ctx.kind} reads {reads}",
        )
    if path:
        owner = place(path)
    elif ctx.schema_name == "project":
        owner = ctx.doc.path
    else:
        owner = f"a {ctx.kind} node" if ctx.kind else "this node"
    hint = did_you_mean(key, allowed) or "allowed keys: " + ", ".join(sorted(allowed))
    return Diagnostic(f"unknown key '{key}' in {owner}", where, hint=hint)


def _missing_key(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    missing = err.message.split("'")[1] if "'" in err.message else "?"
    return Diagnostic(
        f"missing required key '{missing}'",
        ctx.doc.location(path),
        hint=_REQUIRED_HINTS.get(missing, f"add `{missing}:`"),
    )


def _one_of(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    if not path and ctx.kind in ("transform", "rule"):
        data = ctx.doc.data
        both = ctx.kind in data and "sql" in data
        msg = (
            f"a {ctx.kind} has both `{ctx.kind}:` and `sql:`" if both else f"a {ctx.kind} needs SQL"
        )
        return Diagnostic(
            msg,
            ctx.doc.location(),
            hint=f"write the SQL inline under `{ctx.kind}: |`, or name a .sql file with `sql:`",
        )
    subs = list(err.context or [])
    mismatches = [e for e in subs if _is_mismatch(e, path)]
    if not subs or len(mismatches) == len(subs):
        # The value has none of the shapes allowed here: say which shapes are.
        expected = []
        for e in mismatches:
            if e.validator == "type":
                expected.extend(_type_words(e.validator_value))
            else:
                expected.append(" or ".join(show(v) for v in e.validator_value))
        return _wrong_type(ctx, path, err.instance, expected)
    # The value has an allowed shape: explain the error inside it.
    best = max(
        (e for e in subs if e not in mismatches),
        key=lambda e: (len(e.absolute_path), e.validator != "type"),
    )
    return schema_diagnostic(ctx.doc, best, ctx.schema_name)


def _is_mismatch(e: ValidationError, path: Path_) -> bool:
    """A branch of a oneOf that does not accept this kind of value at all."""
    if tuple(e.absolute_path) != path:
        return False
    return e.validator == "type" or (e.validator == "enum" and isinstance(e.instance, dict | list))


def _type_words(value: str | list[str]) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    return [_TYPE_WORDS.get(n, n) for n in names]


def _type(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    return _wrong_type(ctx, path, err.instance, _type_words(err.validator_value))


def _wrong_type(ctx: _Context, path: Path_, value: Any, expected: list[str]) -> Diagnostic:
    where = ctx.doc.location(path)
    special = _shape_messages(path, value)
    if special is not None:
        message, hint = special
        return Diagnostic(message, where, hint=hint)
    words = " or ".join(dict.fromkeys(expected)) or "something else"
    if "a string" in expected and isinstance(value, dict | list):
        hint = "if this is text, quote it: a `: `, `[` or `{` in a plain value is YAML syntax"
    else:
        hint = f"write {words} here"
    return Diagnostic(f"{place(path)} must be {words}, found {_found(value)}", where, hint=hint)


def _shape_messages(path: Path_, value: Any) -> tuple[str, str] | None:
    """Messages for the shapes people get wrong most, often from dbt habits."""
    if path == ("columns",):
        return (
            "`columns` is a mapping of column name to a type or {type, description}",
            "e.g. " + _columns_example(value),
        )
    if len(path) == 2 and path[0] == "columns":
        name = path[1]
        return (
            f"column '{name}' is a SQL type or a mapping {{type, description}}, "
            f"found {_found(value)}",
            f"e.g. `{name}: integer` or `{name}: {{type: integer, description: ...}}`",
        )
    if path == ("inputs",):
        ref = value if isinstance(value, str) and value else "source.orders"
        return ("`inputs` is a list of `- ref: kind.name`", f"write `inputs: [{{ref: {ref}}}]`")
    if len(path) == 2 and path[0] == "inputs":
        ref = value if isinstance(value, str) else "kind.name"
        return (
            f"{place(path)} is a mapping `ref: kind.name`, found {_found(value)}",
            f"write `- ref: {ref}`",
        )
    if path == ("tags",):
        tag = value if isinstance(value, str) and value else "finance"
        return (f"tags is a list, e.g. [{tag}]", f"write `tags: [{tag}]`")
    if len(path) == 2 and path[0] == "tags":
        return (f"{place(path)} must be a string, found {_found(value)}", "e.g. tags: [finance]")
    if path == ("options",):
        return (
            "`options` is a mapping of reader option to value",
            "e.g. options: {delim: ';', header: true}",
        )
    if len(path) == 2 and path[0] == "options":
        return (
            f"{place(path)} must be a string, a number or true/false, found {_found(value)}",
            "e.g. options: {delim: ';', header: true}",
        )
    return None


def _columns_example(value: Any) -> str:
    """``columns: {uid: integer, ...}`` built from a dbt-style list when there is one."""
    items = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            type_ = item.get("type") or item.get("data_type")
            described = item.get("description")
            fields = [f"type: {type_}"] if type_ else []
            fields += [f"description: {described}"] if isinstance(described, str) else []
            if len(fields) == 1 and type_:
                items.append(f"{item['name']}: {type_}")
            else:
                items.append(f"{item['name']}: {{{', '.join(fields) or 'type: varchar'}}}")
    if not items:
        items = ["uid: integer", "email: {type: varchar, description: Login address}"]
    shown = ", ".join(items[:2]) + (", ..." if len(items) > 2 else "")
    return f"`columns: {{{shown}}}`"


def _enum(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    choices = [show(v).strip("'") for v in err.validator_value]
    expected = f"one of {', '.join(choices)}" if len(choices) > 1 else choices[0]
    label = " ".join(str(p) for p in path if isinstance(p, str)) or "value"
    found = show(err.instance)
    if isinstance(err.instance, dict | list):
        message = f"invalid {label}: expected {expected}, found {found}"
    else:
        message = f"invalid {label} {found}: expected {expected}"
    hint = did_you_mean(str(err.instance), choices) if isinstance(err.instance, str) else None
    return Diagnostic(
        message, ctx.doc.location(path), hint=hint or "allowed values: " + ", ".join(choices)
    )


def _pattern(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    if "propertyNames" in err.absolute_schema_path:
        # A key of this mapping is wrong, not a value: point at the key.
        owner = path[-1] if path else ""
        noun = {"columns": "column name", "options": "option name"}.get(str(owner), "key")
        return Diagnostic(
            f"invalid {noun} {show(err.instance)}",
            ctx.doc.location((*path, str(err.instance)), key=True),
            hint=_IDENTIFIER_HINT,
        )
    field_name = path[-1] if path else "value"
    if field_name == "ref" or (len(path) >= 2 and path[-2] == "inputs"):
        hint = "a ref is `kind.name` (kind: source, transform or seed), e.g. source.orders"
    else:
        hint = _IDENTIFIER_HINT
    return Diagnostic(
        f"invalid {field_name} {show(err.instance)}", ctx.doc.location(path), hint=hint
    )


def _min_length(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    return Diagnostic(
        f"{place(path)} is empty", ctx.doc.location(path), hint="write a value, or remove the key"
    )


def _unique_items(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    items = err.instance if isinstance(err.instance, list) else []
    index = next((i for i, item in enumerate(items) if item in items[:i]), 0)
    return Diagnostic(
        f"{place(path)} lists {show(items[index]) if items else 'an item'} twice",
        ctx.doc.location((*path, index)),
        hint="remove the repeated item",
    )


def _other(ctx: _Context, err: ValidationError, path: Path_) -> Diagnostic:
    return Diagnostic(
        f"{place(path)} is not valid here ({err.validator})",
        ctx.doc.location(path),
        hint=f"see the {ctx.schema_name} schema in seeknal/schemas/{ctx.schema_name}.schema.json",
    )


_HANDLERS: dict[str, Callable[[_Context, ValidationError, Path_], Diagnostic]] = {
    "additionalProperties": _unknown_key,
    "required": _missing_key,
    "oneOf": _one_of,
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "minLength": _min_length,
    "uniqueItems": _unique_items,
}
