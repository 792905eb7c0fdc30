"""The JSON Schemas that are seeknal's contracts, and a tiny loader/validator.

Validation asks a compiled predicate first (``predicate.py``): almost every document is
valid, and the predicate says so without importing ``jsonschema``. Only an invalid
document goes to ``jsonschema``, which words the errors.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from seeknal.schemas.predicate import Check, compile_predicate

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_NAMES = ("plan", "project", "node", "state", "profiles")
# Older formats stay loadable: their schemas are kept, frozen, as `<name>.v<N>`.
OLD_SCHEMA_NAMES = ("plan.v1", "plan.v2")

__all__ = [
    "SCHEMA_NAMES",
    "ValidationError",
    "is_valid",
    "is_valid_member",
    "iter_errors",
    "known_valid",
    "load_schema",
    "remember_valid",
    "validator",
]

# Documents found valid in this process, as (schema, content digest): the plan the
# compiler has just validated is not walked again when the runtime verifies it in the
# same process (`seeknal run`), once it has recomputed the digest.
_KNOWN_VALID: set[tuple[str, str]] = set()


def __getattr__(name: str) -> Any:
    # `schemas.ValidationError` without importing jsonschema for everyone who validates.
    if name == "ValidationError":
        from jsonschema.exceptions import ValidationError

        return ValidationError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` shipped inside the package."""
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    """A compiled ``jsonschema`` validator for one schema (the reference implementation)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


@cache
def _predicate(name: str) -> Check | None:
    return compile_predicate(load_schema(name))


def is_valid(name: str, instance: Any) -> bool:
    """Whether ``instance`` is valid against schema ``name``.

    Example:
        >>> is_valid("project", {"name": "shop"}), is_valid("project", {})
        (True, False)
    """
    predicate = _predicate(name)
    if predicate is None:
        return bool(validator(name).is_valid(instance))
    return predicate(instance)


@cache
def _member_schema(name: str, key: str) -> dict[str, Any]:
    schema = load_schema(name)
    if set(schema) - _PLAIN_OBJECT_KEYWORDS or schema.get("type") != "object":
        # A keyword relating members to each other: a member is not valid on its own.
        raise ValueError(f"schema {name!r} does not validate its members independently")
    return {"$defs": schema.get("$defs", {}), **schema["properties"][key]}


@cache
def _member_predicate(name: str, key: str) -> Check | None:
    return compile_predicate(_member_schema(name, key))


# Keywords of an object schema under which each member is valid or not on its own.
_PLAIN_OBJECT_KEYWORDS = frozenset(
    {"$schema", "$id", "title", "description", "type", "additionalProperties", "required"}
    | {"properties", "$defs"}
)


def is_valid_member(name: str, key: str, value: Any) -> bool:
    """Whether ``value`` is valid as member ``key`` of a document of schema ``name``.

    A valid document with only that member changed is valid exactly when this is true
    (the schema relates no member to another; checked).

    Example:
        >>> is_valid_member("plan", "work", []), is_valid_member("plan", "work", {})
        (True, False)
    """
    predicate = _member_predicate(name, key)
    if predicate is None:
        from jsonschema import Draft202012Validator

        return bool(Draft202012Validator(_member_schema(name, key)).is_valid(value))
    return predicate(value)


def remember_valid(name: str, digest: str) -> None:
    """Record that the document whose content hashes to ``digest`` is valid against
    schema ``name`` (the caller validated it, and owns what the digest covers)."""
    _KNOWN_VALID.add((name, digest))


def known_valid(name: str, digest: str) -> bool:
    """Whether a document of content ``digest`` was found valid against ``name`` in this
    process; the caller must check that its document still hashes to ``digest``."""
    return (name, digest) in _KNOWN_VALID


def iter_errors(name: str, instance: Any) -> list[ValidationError]:
    """Every validation error of ``instance`` against schema ``name``, in document order."""
    if is_valid(name, instance):
        return []
    # jsonschema has the last word: it words the errors, and it decides.
    errors = list(validator(name).iter_errors(instance))
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
