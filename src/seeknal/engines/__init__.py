"""Engines: one adapter per warehouse behind a small, capability-flagged protocol."""

from __future__ import annotations

from pathlib import Path

from seeknal.engines.base import (
    Capabilities,
    Catalog,
    Engine,
    EngineError,
    Materialization,
    Relation,
    quote_identifier,
    quote_literal,
)

__all__ = [
    "Capabilities",
    "Catalog",
    "Engine",
    "EngineError",
    "Materialization",
    "Relation",
    "open_engine",
    "quote_identifier",
    "quote_literal",
]


def open_engine(
    name: str, database: str | Path, *, file_search_path: str | Path, read_only: bool = False
) -> Engine:
    """Open the engine ``name`` (as in a plan's ``target.engine``) on ``database``.

    Args:
        name: Engine name; only ``duckdb`` exists so far.
        database: The warehouse (a DuckDB file path).
        file_search_path: Directory the plan's relative file names resolve against.
        read_only: Open the warehouse for reading only.

    Raises:
        EngineError: Unknown engine, or the warehouse cannot be opened.

    Example:
        >>> engine = open_engine("duckdb", ":memory:", file_search_path=".")
        >>> engine.close()
    """
    if name == "duckdb":
        # Imported here so that engines nobody uses never load their driver.
        from seeknal.engines.duckdb import DuckDBEngine

        return DuckDBEngine(database, file_search_path=file_search_path, read_only=read_only)
    raise EngineError(f"unknown engine {name!r}", hint="seeknal supports: duckdb")
