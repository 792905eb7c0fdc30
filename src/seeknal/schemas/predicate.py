"""A JSON Schema compiled into one Python predicate: "is this document valid?", fast.

``jsonschema`` is the reference: it explains *why* a document is invalid, and it is what
the schema files are written for. But it re-walks the schema for every value, which
makes validating a plan of 1,000 nodes take seconds. The compiler and the runtime
validate every plan, every state document and every node file, and nearly all of them
are valid, so ``schemas.iter_errors`` asks this predicate first and calls ``jsonschema``
only when the answer is no (to word the errors).

The predicate understands exactly the keywords seeknal's schemas use, with draft
2020-12 semantics; a schema using any other keyword compiles to ``None`` and
``jsonschema`` does all the work. ``tests/schemas/test_predicate.py`` compares the two
on generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only annotate: they never make a document invalid.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)
_OBJECT_KEYWORDS = frozenset({"required", "properties", "additionalProperties", "propertyNames"})
_SUPPORTED = (
    _ANNOTATIONS
    | _OBJECT_KEYWORDS
    | {
        "$ref",
        "type",
        "const",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "pattern",
        "uniqueItems",
        "allOf",
        "oneOf",
        "if",
        "then",
        "else",
    }
)


class Unsupported(Exception):
    """The schema uses something the predicate does not implement."""


def compile_predicate(schema: Mapping[str, Any]) -> Check | None:
    """A function telling whether a document is valid against ``schema``.

    Returns ``None`` when the schema uses a keyword or a ``$ref`` form this module does
    not implement; the caller then validates with ``jsonschema``.

    Example:
        >>> check = compile_predicate({"type": "object", "required": ["a"]})
        >>> check({"a": 1}), check({})
        (True, False)
    """
    try:
        return _Compiler(schema).compile(schema)
    except Unsupported:
        return None


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise Unsupported(f"schema {schema!r}")
        unknown = set(schema) - _SUPPORTED
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        checks: list[Check] = []
        if _OBJECT_KEYWORDS & schema.keys():
            # One pass over a mapping for all of its keywords: most of a plan is mappings.
            checks.append(self._object(schema))
        for key in schema:
            if key in _ANNOTATIONS or key in _OBJECT_KEYWORDS:
                continue
            check = self._keyword(key, schema)
            if check is not None:
                checks.append(check)
        return _all_of(checks)

    def _object(self, schema: Mapping[str, Any]) -> Check:
        """``required``, ``properties``, ``additionalProperties`` and ``propertyNames``."""
        required = tuple(schema.get("required", ()))
        declared = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        # A property declared `true` needs no call (the check sees `_always` and skips).
        known: dict[str, Check] = declared
        extra = (
            self.compile(schema["additionalProperties"])
            if "additionalProperties" in schema
            else None
        )
        if extra is _always:
            extra = None
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None

        def check(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return True
            for name in required:
                if name not in instance:
                    return False
            for name, value in instance.items():
                if names is not None and not names(name):
                    return False
                sub = known.get(name)
                if sub is None:
                    if extra is not None and not extra(value):
                        return False
                elif sub is not _always and not sub(value):
                    return False
            return True

        return check

    def _keyword(self, key: str, schema: Mapping[str, Any]) -> Check | None:
        value = schema[key]
        if key == "$ref":
            return self._ref(value)
        if key == "type":
            return _type_check([value] if isinstance(value, str) else list(value))
        if key == "const":
            return lambda instance: _equal(instance, value)
        if key == "enum":
            options = list(value)
            if all(isinstance(option, str) for option in options):
                strings = frozenset(options)
                return lambda instance: isinstance(instance, str) and instance in strings
            return lambda instance: any(_equal(instance, option) for option in options)
        if key == "items":
            return _items(self.compile(value), skip=len(schema.get("prefixItems", ())))
        if key == "prefixItems":
            return _prefix_items([self.compile(sub) for sub in value])
        if key in ("minItems", "maxItems"):
            bound, at_least = int(value), key == "minItems"
            return lambda instance: (
                not isinstance(instance, list)
                or (len(instance) >= bound if at_least else len(instance) <= bound)
            )
        if key in _BOUNDS:
            limit, holds = value, _BOUNDS[key]
            if not _is_number(limit):
                raise Unsupported(f"{key} {limit!r}")
            return lambda instance: not _is_number(instance) or holds(instance, limit)
        if key == "minLength":
            minimum = int(value)
            return lambda instance: not isinstance(instance, str) or len(instance) >= minimum
        if key == "pattern":
            return _pattern(re.compile(value))
        if key == "uniqueItems":
            return _unique if value else None
        if key == "allOf":
            return _all_of([self.compile(sub) for sub in value])
        if key == "oneOf":
            return _one_of([self.compile(sub) for sub in value])
        if key == "if":
            then = self.compile(schema["then"]) if "then" in schema else _always
            otherwise = self.compile(schema["else"]) if "else" in schema else _always
            return _if_then_else(self.compile(value), then, otherwise)
        if key in ("then", "else"):
            return None  # evaluated with "if" (and ignored without it, as the spec says)
        raise Unsupported(key)  # pragma: no cover - _SUPPORTED and this list agree

    def _ref(self, ref: Any) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or ref.count("/") != 2:
            raise Unsupported(f"$ref {ref!r}")
        name = ref.split("/")[2]
        if name not in self.refs:
            target = self.root.get("$defs", {}).get(name)
            if target is None:
                raise Unsupported(f"$ref {ref!r}")
            # Recursive definitions see the slot before it is filled.
            slot: list[Check] = []
            self.refs[name] = lambda instance: slot[0](instance)
            slot.append(self.compile(target))
            self.refs[name] = slot[0]
        return self.refs[name]


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _type_check(names: Sequence[str]) -> Check:
    tests = [_TYPES[name] for name in names if name in _TYPES]
    if len(tests) != len(names):
        raise Unsupported(f"type {names!r}")
    if len(tests) == 1:
        return tests[0]
    return lambda instance: any(test(instance) for test in tests)


def _is_integer(instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


def _is_number(instance: Any) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


_TYPES: dict[str, Check] = {
    "object": lambda instance: isinstance(instance, dict),
    "array": lambda instance: isinstance(instance, list),
    "string": lambda instance: isinstance(instance, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda instance: isinstance(instance, bool),
    "null": lambda instance: instance is None,
}


_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda value, limit: value >= limit,
    "maximum": lambda value, limit: value <= limit,
    "exclusiveMinimum": lambda value, limit: value > limit,
    "exclusiveMaximum": lambda value, limit: value < limit,
}


def _items(sub: Check, skip: int = 0) -> Check:
    """Every item (after the first ``skip``, which ``prefixItems`` checks) passes ``sub``."""
    if sub is _always:
        return _always

    def check(instance: Any) -> bool:
        if not isinstance(instance, list):
            return True
        for item in instance[skip:] if skip else instance:  # noqa: SIM110 - faster than all()
            if not sub(item):
                return False
        return True

    return check


def _prefix_items(subs: list[Check]) -> Check:
    """Item ``i`` passes ``subs[i]``; a shorter list is fine (``minItems`` says otherwise)."""

    def check(instance: Any) -> bool:
        if not isinstance(instance, list):
            return True
        return all(sub(item) for sub, item in zip(subs, instance, strict=False))

    return check


def _pattern(regex: re.Pattern[str]) -> Check:
    search = regex.search

    def check(instance: Any) -> bool:
        return not isinstance(instance, str) or search(instance) is not None

    return check


def _unique(instance: Any) -> bool:
    if not isinstance(instance, list):
        return True
    if all(isinstance(item, str) for item in instance):
        return len(set(instance)) == len(instance)
    seen: list[Any] = []
    for item in instance:
        if any(_equal(item, other) for other in seen):
            return False
        seen.append(item)
    return True


def _all_of(checks: list[Check]) -> Check:
    checks = [check for check in checks if check is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda instance: first(instance) and second(instance)

    def check(instance: Any) -> bool:
        for one in checks:  # noqa: SIM110 - a loop is faster than all() over a genexpr
            if not one(instance):
                return False
        return True

    return check


def _one_of(checks: list[Check]) -> Check:
    return lambda instance: sum(1 for check in checks if check(instance)) == 1


def _if_then_else(condition: Check, then: Check, otherwise: Check) -> Check:
    return lambda instance: then(instance) if condition(instance) else otherwise(instance)


def _equal(one: Any, two: Any) -> bool:
    """JSON equality: ``True`` is not ``1``; containers compare element by element."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return False  # `one is two` was not true: True vs 1, or True vs False
    return bool(one == two)
