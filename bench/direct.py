"""Build a seeknal project with plain DuckDB: the benchmark's baseline.

This deliberately does not import seeknal. It renders each node's SQL with Jinja2
(``ref()``, ``var()``, ``env_var()``, project macros), replaces every ref by the node id
(a node ``transform.x`` becomes the table ``transform.x``, so plain qualified names work
as they are), orders the nodes by their refs and runs ``CREATE TABLE ... AS`` (or
``CREATE VIEW`` for ``materialized: view``) in one DuckDB file.

An incremental node (``materialized: incremental_by_time``) is computed in one go: its
time bounds (``{{ start_ts }}``, ...) are the whole window, from its ``start`` to its
``end``, ``--end`` or now, whichever comes first (cut to its schedule), and rows outside
the window are left out — what every batched run must add up to. Schedules are read in
UTC.

Usage::

    python bench/direct.py PROJECT_DIR [--db PATH] [--end TIME] [--json]

With ``--json`` it prints ``{"seconds": ..., "total_seconds": ..., "nodes": ...}``:
``seconds`` is DuckDB's part (from connecting to closing the database), ``total_seconds``
adds reading the YAML and rendering the SQL; neither includes interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import yaml
from croniter import croniter

KINDS = ("source", "seed", "transform", "rule")
BARE_REF = re.compile(r"""ref\(\s*['"]([A-Za-z_]\w*\.[A-Za-z_]\w*)['"]\s*\)""")
QUALIFIED = re.compile(r"\b(source|seed|transform)\.([A-Za-z_]\w*)\b")
COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass
class Node:
    """One node of the project, as the baseline needs it."""

    id: str
    kind: str
    spec: dict[str, Any]
    file: Path
    sql: str = ""
    depends_on: set[str] = field(default_factory=set)
    window: tuple[datetime, datetime] | None = None


def load_nodes(project: Path) -> dict[str, Node]:
    """Every ``seeknal/**/*.yml`` of ``project``, by node id."""
    nodes: dict[str, Node] = {}
    for path in sorted((project / "seeknal").rglob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        node_id = f"{spec['kind']}.{spec['name']}"
        nodes[node_id] = Node(node_id, spec["kind"], spec, path)
    return nodes


def macro_prelude(project: Path) -> str:
    """The text of every ``macros/*.sql``, prepended to each template."""
    macros = project / "macros"
    if not macros.is_dir():
        return ""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(macros.glob("*.sql")))


def window_of(spec: dict[str, Any], end: datetime | None) -> tuple[datetime, datetime] | None:
    """An incremental node's whole window, ``[start, end)`` cut to its schedule (UTC)."""
    config = spec["incremental"]
    start = _moment(str(config["start"]))
    ends = [end or datetime.now(UTC).replace(tzinfo=None)]
    if "end" in config:
        ends.append(_moment(str(config["end"])))
    schedule = config["schedule"]
    aliases = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
    cron = {**aliases, "@monthly": "0 0 1 * *"}.get(schedule, schedule)
    last = croniter(cron, min(ends) + timedelta(seconds=1)).get_prev(datetime)
    return (start, last) if start < last else None


def _moment(text: str) -> datetime:
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time())
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def render_sql(
    project: Path, nodes: dict[str, Node], variables: dict[str, Any], end: datetime | None = None
) -> None:
    """Render every transform's SQL and record its dependencies."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    prelude = macro_prelude(project)
    for node in nodes.values():
        if node.kind not in ("transform", "rule"):
            continue
        spec = node.spec
        if "sql" in spec:
            raw = (node.file.parent / spec["sql"]).read_text(encoding="utf-8")
        else:
            raw = spec[node.kind]  # `transform:` or `rule:`

        def var(name: str, default: Any = None) -> Any:
            if name in variables:
                return variables[name]
            if default is None:
                raise KeyError(f"undefined var {name!r}")
            return default

        bounds: dict[str, str] = {}
        if spec.get("materialized") == "incremental_by_time":
            window = window_of(spec, end)
            node.window = window
            lo, hi = window or (datetime(1970, 1, 1), datetime(1970, 1, 1))
            bounds = {
                "start_ts": f"TIMESTAMP '{lo:%Y-%m-%d %H:%M:%S}'",
                "end_ts": f"TIMESTAMP '{hi:%Y-%m-%d %H:%M:%S}'",
                "start_date": f"DATE '{lo:%Y-%m-%d}'",
                "end_date": f"DATE '{hi:%Y-%m-%d}'",
            }
        template = env.from_string(prelude + raw)
        rendered = template.render(
            ref=lambda node_id: node_id,
            var=var,
            env_var=lambda name, default="": os.environ.get(name, default),
            **bounds,
        )
        sql = BARE_REF.sub(lambda m: m.group(1), rendered).strip()
        node.sql = sql
        named = {f"{k}.{n}" for k, n in QUALIFIED.findall(COMMENT.sub(" ", sql))}
        node.depends_on = (named & nodes.keys()) - {node.id}


def load_statement(project: Path, node: Node) -> str:
    """``CREATE TABLE`` for a source or a seed."""
    spec = node.spec
    path = (project / (spec.get("table") or spec["path"])).as_posix().replace("'", "''")
    fmt = spec.get("source", "csv")
    if node.kind == "seed" or fmt == "csv":
        columns = spec.get("columns")
        if columns:
            cols = ", ".join(f"'{name}': '{ctype}'" for name, ctype in columns.items())
            reader = f"read_csv('{path}', header = true, columns = {{{cols}}})"
        else:
            reader = f"read_csv_auto('{path}', header = true)"
    elif fmt == "parquet":
        reader = f"read_parquet('{path}')"
    elif fmt == "json":
        reader = f"read_json_auto('{path}')"
    else:
        raise ValueError(f"{node.id}: source {fmt!r} is not supported by the baseline")
    return f"CREATE TABLE {node.id} AS SELECT * FROM {reader}"


def build_project(project: Path, db_path: Path, end: datetime | None = None) -> dict[str, Any]:
    """Build every node of ``project`` into ``db_path``; return timing and counts.

    ``end`` (exclusive, UTC) caps incremental nodes' windows instead of now.
    """
    started = time.perf_counter()
    config = yaml.safe_load((project / "seeknal_project.yml").read_text(encoding="utf-8"))
    nodes = load_nodes(project)
    render_sql(project, nodes, dict(config.get("vars") or {}), end)
    order = TopologicalSorter({n.id: n.depends_on for n in nodes.values()}).static_order()
    if db_path.exists():
        db_path.unlink()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    prepared = time.perf_counter()
    con = duckdb.connect(str(db_path))
    try:
        for kind in KINDS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {kind}")
        for node_id in order:
            node = nodes[node_id]
            kind, name = node.id.split(".", 1)
            relation = f'"{kind}"."{name}"'  # RULE is a keyword in DuckDB: quote
            if node.kind in ("source", "seed"):
                statement = load_statement(project, node)
            elif node.kind == "rule":
                # A rule is a view of violations, counted once: what seeknal does.
                statement = (
                    f"CREATE VIEW {relation} AS\n{node.sql};\nSELECT COUNT(*) FROM {relation}"
                )
            elif node.spec.get("materialized") == "view":
                statement = f"CREATE VIEW {relation} AS\n{node.sql}"
            elif node.spec.get("materialized") == "incremental_by_time":
                column = node.spec["incremental"]["time_column"]
                lo, hi = node.window or (datetime(1970, 1, 1), datetime(1970, 1, 1))
                statement = (
                    f"CREATE TABLE {relation} AS\nSELECT * FROM (\n{node.sql}\n) AS q\n"
                    f"WHERE q.\"{column}\" >= TIMESTAMP '{lo:%Y-%m-%d %H:%M:%S}'"
                    f" AND q.\"{column}\" < TIMESTAMP '{hi:%Y-%m-%d %H:%M:%S}'"
                )
            else:
                statement = f"CREATE TABLE {relation} AS\n{node.sql}"
            try:
                con.execute(statement)
            except duckdb.Error as exc:
                raise RuntimeError(f"{node.id} failed: {exc}\n{statement}") from exc
    finally:
        con.close()
    done = time.perf_counter()
    # "seconds" is DuckDB's part alone (connect to close): reading the YAML and
    # rendering the SQL is what seeknal does at compile time, not when it executes.
    return {"seconds": done - prepared, "total_seconds": done - started, "nodes": len(nodes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument(
        "--db", type=Path, default=None, help="default: PROJECT/target/direct.duckdb"
    )
    parser.add_argument("--json", action="store_true", help="print timing as JSON")
    parser.add_argument(
        "--end",
        default=None,
        help="cap incremental nodes here instead of now: a date includes that day",
    )
    args = parser.parse_args(argv)
    project = args.project.resolve()
    db = args.db or project / "target" / "direct.duckdb"
    end = None
    if args.end:
        end = _moment(args.end) + (timedelta(days=1) if len(args.end) == 10 else timedelta())
    result = build_project(project, db, end)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"built {result['nodes']} nodes into {db} in {result['seconds']:.3f}s of DuckDB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
