"""The JSON Schemas that are seeknal's contracts, and a tiny loader/validator."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_NAMES = ("plan", "project", "node", "state", "profiles")
# Older formats stay loadable: their schemas are kept, frozen, as `<name>.v<N>`.
OLD_SCHEMA_NAMES = ("plan.v1", "plan.v2")

__all__ = ["SCHEMA_NAMES", "ValidationError", "iter_errors", "load_schema", "validator"]


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` shipped inside the package."""
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    """A compiled validator for one schema."""
    return Draft202012Validator(load_schema(name))


def iter_errors(name: str, instance: Any) -> list[ValidationError]:
    """Every validation error of ``instance`` against schema ``name``, in document order."""
    errors = list(validator(name).iter_errors(instance))
    return sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
