"""Names in the warehouse, shared by the compiler (which plans them) and the runtime.

- a node id is ``kind.name`` (``transform.orders``);
- a snapshot, one version of a node, is ``seeknal__<kind>.<name>__<hash12>``: schema
  ``seeknal__<kind>``, table or view ``<name>__<hash12>``;
- an environment's view of a node is the node id itself in prod, ``<kind>__<env>.<name>``
  elsewhere, so every environment can live in one warehouse.
"""

from __future__ import annotations

import re

from seeknal.errors import SeeknalError

PROD = "prod"
# Node names, declared column names, ref() arguments and `source: table` names.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IDENTIFIER_HINT = "letters, digits and _, not starting with a digit"
# Characters no column name may hold. Output columns keep the names the engine gives
# them (a PIVOT's `10`, an unnamed `count_star()`, a CSV's `order id`) and are always
# quoted; these are the ones that only ever appear in an injection attempt or a
# terminal escape sequence.
_UNSAFE_IN_NAMES = frozenset("\"'`;\\")
MAX_NAME_LENGTH = 255
# Lower case only: the warehouse folds unquoted names, so `Dev` and `dev` would be one
# schema (`transform__dev`) shared by two environments.
ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_environment(name: str) -> str:
    """Return ``name`` if it can name an environment, else raise with what to type.

    An environment name is a lower-case identifier: a letter, then letters, digits or
    underscores. It becomes part of schema names (``transform__dev``).

    Raises:
        SeeknalError: The name is empty, has other characters, or upper-case letters.

    Example:
        >>> check_environment("staging_2")
        'staging_2'
        >>> check_environment("Dev")
        Traceback (most recent call last):
        ...
        seeknal.errors.SeeknalError: invalid environment name 'Dev'
    """
    if ENVIRONMENT_NAME.fullmatch(name):
        return name
    suggestion = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    if suggestion and not suggestion[0].isalpha():
        suggestion = f"env_{suggestion}"
    hint = (
        "an environment name is a lower-case identifier: a letter, then letters, digits "
        "or _ (e.g. prod, dev, staging_2)"
    )
    if suggestion and ENVIRONMENT_NAME.fullmatch(suggestion):
        hint += f"; did you mean '{suggestion}'?"
    raise SeeknalError(f"invalid environment name {name!r}", hint=hint)


def is_identifier(name: object) -> bool:
    """Whether ``name`` can name a node or a column.

    Example:
        >>> is_identifier("order_id"), is_identifier('x"; DROP TABLE y'), is_identifier("1a")
        (True, False, False)
    """
    return isinstance(name, str) and IDENTIFIER.fullmatch(name) is not None


def unsafe_column_name(name: str) -> str | None:
    """Why ``name`` cannot name an output column, or None when it can.

    Example:
        >>> unsafe_column_name("count_star()") is None, unsafe_column_name("x; DROP TABLE y")
        (True, "it contains ';'")
    """
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    for char in name:
        if char in _UNSAFE_IN_NAMES or not char.isprintable():
            return f"it contains {char!r}"
    return None


def snapshot_name(kind: str, name: str, data_fingerprint: str) -> str:
    """The physical name of one node version.

    Example:
        >>> snapshot_name("transform", "orders", "0123456789abcdef")
        'seeknal__transform.orders__0123456789ab'
    """
    return f"seeknal__{kind}.{name}__{data_fingerprint[:12]}"


def view_name(node_id: str, environment: str) -> str:
    """The view users query for ``node_id`` in ``environment``.

    Example:
        >>> view_name("transform.orders", "prod")
        'transform.orders'
        >>> view_name("transform.orders", "dev")
        'transform__dev.orders'
    """
    kind, _, name = node_id.partition(".")
    return node_id if environment == PROD else f"{kind}__{environment}.{name}"
