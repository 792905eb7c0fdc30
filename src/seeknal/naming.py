"""Names in the warehouse, shared by the compiler (which plans them) and the runtime.

- a node id is ``kind.name`` (``transform.orders``);
- a snapshot, one version of a node, is ``seeknal__<kind>.<name>__<hash12>``: schema
  ``seeknal__<kind>``, table or view ``<name>__<hash12>``;
- an environment's view of a node is the node id itself in prod, ``<kind>__<env>.<name>``
  elsewhere, so every environment can live in one warehouse.
"""

from __future__ import annotations

PROD = "prod"


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
