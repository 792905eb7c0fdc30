"""Canonical JSON and sha256: the one way seeknal serializes and hashes anything.

Same value -> same bytes, on every machine: sorted keys, two-space indent, UTF-8,
trailing newline. Both halves (compiler and runtime) use these, so a plan's id can be
recomputed by the runtime exactly as the compiler computed it.

The bytes are defined as ``json.dumps(value, sort_keys=True, indent=2,
ensure_ascii=False) + "\\n"``. With an indent, ``json`` falls back to its pure-Python
encoder, which spends most of its time in generators; ``canonical_json`` writes the
same bytes with one recursive function over the plain JSON types (about 2.5x faster on
a plan of 1,000 nodes) and hands anything else to ``json`` itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Collection, Iterable
from json.encoder import encode_basestring
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialize ``value`` canonically.

    >>> canonical_json({"b": 1, "a": [2]})
    '{\\n  "a": [\\n    2\\n  ],\\n  "b": 1\\n}\\n'
    """
    out: list[str] = []
    try:
        _encode(value, "\n", out.append)
    except _Unusual:
        # Non-string keys, NaN, subclasses json treats specially: json's own rules.
        return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    out.append("\n")
    return "".join(out)


class _Unusual(Exception):
    """A value outside plain JSON types: let ``json`` decide how it looks (or fails)."""


def _encode(value: Any, newline: str, append: Any) -> None:
    """Append the indented JSON of ``value``; ``newline`` is "\\n" plus the current indent."""
    kind = type(value)
    if kind is str:
        append(encode_basestring(value))
    elif kind is dict:
        if not value:
            append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        keys = list(value)
        for key in keys:
            if type(key) is not str:
                raise _Unusual
        for key in sorted(keys):
            append(separator)
            append(encode_basestring(key))
            append(": ")
            item = value[key]
            if type(item) is str:
                append(encode_basestring(item))
            else:
                _encode(item, inner, append)
            separator = "," + inner
        append(newline)
        append("}")
    elif kind is list or kind is tuple:
        if not value:
            append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            append(separator)
            if type(item) is str:
                append(encode_basestring(item))
            else:
                _encode(item, inner, append)
            separator = "," + inner
        append(newline)
        append("]")
    elif value is None:
        append("null")
    elif value is True:
        append("true")
    elif value is False:
        append("false")
    elif kind is int:
        append(int.__repr__(value))
    elif kind is float and value == value and value not in (float("inf"), float("-inf")):
        append(float.__repr__(value))
    else:
        raise _Unusual


def sha256_hex(data: str | bytes) -> str:
    """Hex sha256 of text (UTF-8) or bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hash_value(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def file_sha256(path: str | bytes | Any, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def with_top_level_key(text: str, keys: Iterable[str], key: str, value: Any) -> str:
    """``canonical_json`` of a dict, given that of the same dict without ``key``.

    ``text`` is the canonical JSON of a non-empty dict whose keys are ``keys`` (``key``
    not among them). In canonical JSON a top-level key is the only thing that starts a
    line with exactly two spaces and a quote (strings never hold a raw line break), so
    the new member goes in front of the first key that sorts after it.

    Example:
        >>> body = canonical_json({"a": 1, "c": [2]})
        >>> with_top_level_key(body, ["a", "c"], "b", "x") == canonical_json(
        ...     {"a": 1, "b": "x", "c": [2]}
        ... )
        True
    """
    member = encode_basestring(key) + ": " + canonical_json(value)[:-1].replace("\n", "\n  ")
    later = sorted(k for k in keys if k > key)
    if not later:
        assert text.endswith("\n}\n")
        return text[: -len("\n}\n")] + ",\n  " + member + "\n}\n"
    at = text.index("\n  " + encode_basestring(later[0]) + ": ") + len("\n  ")
    return text[:at] + member + ",\n  " + text[at:]


def without_top_level_string(
    text: str, key: str, *, from_end: bool = False
) -> tuple[str, str] | None:
    """``(value, rest)`` when ``text`` has the layout of canonical JSON (``{`` and ``}``
    on lines of their own, each top-level member on a line starting with two spaces and a
    quote) with a string member ``key`` among at least two; ``rest`` is ``text`` without
    that member. When ``text`` is the canonical JSON of a dict, ``rest`` is that of the
    dict without ``key``. ``None`` when ``text`` is not of that layout (a plan file
    someone reformatted, say): the caller then serializes the dict.

    Only the layout is checked, not that ``rest`` is canonical: that would cost the
    serialization this spares. The inverse of :func:`with_top_level_key`, for string
    values.

    Example:
        >>> without_top_level_string(canonical_json({"a": 1, "b": "x"}), "b")
        ('x', '{\\n  "a": 1\\n}\\n')
    """
    if not text.startswith("{\n") or not text.endswith("\n}\n"):
        return None
    span = _value_span(text, key, from_end)
    value = None if span is None else _string_at(text, *span)
    if value is None or span is None:
        return None
    begin, end = span
    start = begin - len("\n  " + encode_basestring(key) + ": ")
    if text[end] == ",":
        rest = text[:start] + text[end + 1 :]
    elif text[start - 1] == ",":  # the last member: the one before it loses its comma
        rest = text[: start - 1] + text[end:]
    else:
        return None  # the only member
    return value, rest


def with_top_level_values_and_id(
    text: str, values: dict[str, Any], id_key: str, *, from_end: Collection[str] = ()
) -> tuple[str, str] | None:
    """``text`` with the top-level members in ``values`` replaced, and its string member
    ``id_key`` set to the sha256 of the result without that member; and that id.

    When ``text`` is the canonical JSON of a dict, the result is that of the same dict
    with the new values and id: the other members' text is reused as it is, not
    serialized again, and a large document is copied twice (hashed in place, joined
    once).
    Keys in ``from_end`` are looked for from the end (those after a document's large
    members). ``None`` when ``text`` is not of canonical layout, lacks a member, or its
    id member is not a string followed by another member.

    Example:
        >>> text = canonical_json({"a": 1, "id": "", "z": 2})
        >>> done, digest = with_top_level_values_and_id(text, {"z": [3]}, "id")
        >>> done == canonical_json({"a": 1, "id": digest, "z": [3]})
        True
        >>> digest == sha256_hex(canonical_json({"a": 1, "z": [3]}))
        True
    """
    if not text.startswith("{\n") or not text.endswith("\n}\n") or id_key in values:
        return None
    # (begin, end, new text) of each value replaced, in the text as it is.
    changes: list[tuple[int, int, str]] = []
    for key, value in values.items():
        span = _value_span(text, key, key in from_end)
        if span is None:
            return None
        changes.append((*span, canonical_json(value)[:-1].replace("\n", "\n  ")))
    id_span = _value_span(text, id_key, id_key in from_end)
    if id_span is None or text[id_span[1]] != ",":
        return None  # not followed by another member: not spliced this way
    if _string_at(text, *id_span) is None:
        return None
    # The id's whole line, from the newline before it to the one after its comma.
    line = (id_span[0] - len("\n  " + encode_basestring(id_key) + ": "), id_span[1] + 1)
    hashed = sorted([*changes, (*line, "")])
    if any(a[1] > b[0] for a, b in itertools.pairwise(hashed)):
        return None
    data = memoryview(text.encode("ascii")) if text.isascii() else None
    digest = hashlib.sha256()
    position = 0
    for begin, end, replacement in [*hashed, (len(text), len(text), "")]:
        kept = data[position:begin] if data is not None else text[position:begin].encode()
        digest.update(kept)
        digest.update(replacement.encode("utf-8"))
        position = end
    new_id = digest.hexdigest()
    pieces: list[str] = []
    position = 0
    for begin, end, replacement in sorted([*changes, (*id_span, encode_basestring(new_id))]):
        pieces += [text[position:begin], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces), new_id


def _string_at(text: str, begin: int, end: int) -> str | None:
    """The string ``text[begin:end]`` holds as canonical JSON, or None when it holds
    something else (another type, or a string written otherwise)."""
    raw = text[begin:end]
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if type(value) is str and encode_basestring(value) == raw else None


def _value_span(text: str, key: str, from_end: bool) -> tuple[int, int] | None:
    """Where the value of top-level member ``key`` of canonical ``text`` lies, its
    trailing comma left out (a member's line is unique: found from either end)."""
    prefix = "\n  " + encode_basestring(key) + ": "
    start = text.rfind(prefix) if from_end else text.find(prefix)
    if start < 0:
        return None
    begin = start + len(prefix)
    following = text.find('\n  "', begin)
    if following < 0:
        return begin, len(text) - len("\n}\n")
    if text[following - 1] != ",":
        return None
    return begin, following - 1


# The last text given its id in this process (`remember_hashed`), by that id.
_HASHED: dict[str, str] = {}


def remember_hashed(text: str, digest: str) -> None:
    """Record that ``digest`` is the sha256 of ``text`` without its ``plan_id`` member,
    computed here: a reader handed this very string need not hash it again. Only the
    last one is kept (a plan's text can be megabytes)."""
    _HASHED.clear()
    _HASHED[digest] = text


def hashed_here(text: str, digest: Any) -> bool:
    """Whether ``text`` is the very string (not merely an equal one: strings are
    immutable, so the same object cannot have changed) whose id ``digest`` was
    computed in this process."""
    return isinstance(digest, str) and _HASHED.get(digest) is text


def compute_plan_id(plan: dict[str, Any]) -> str:
    """The plan's id: sha256 of its canonical content without ``plan_id``."""
    return hash_value({k: v for k, v in plan.items() if k != "plan_id"})
