"""Incremental nodes: their ``incremental:`` block, time parameters and time column.

A node ``materialized: incremental_by_time`` is a table filled interval by interval. Its
SQL reads the batch's bounds through ``{{ start_ts }}`` / ``{{ end_ts }}`` (TIMESTAMP,
UTC) or ``{{ start_date }}`` / ``{{ end_date }}`` (DATE, in the schedule's time zone);
both ends are exclusive. They render to named parameters (``$start_ts``), never to
literals: the plan holds one SQL text, and the runtime binds the bounds of each batch.

This module checks what the YAML says (load time) and what the query returns (compile
time); ``interval_work.py`` plans the intervals.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.model import IncrementalConfig, Materialized, NodeSpec, SqlText
from seeknal.compiler.yamlfile import YamlDocument
from seeknal.errors import Diagnostic, SourceLocation
from seeknal.intervals import IntervalError, Schedule, format_time, parse_time, zone

if TYPE_CHECKING:
    from seeknal.compiler.sql import ParsedSql

# The parameters a batch binds, and what each renders to in a node's SQL.
# The names an incremental node's SQL uses for its batch's bounds; each renders to the
# named parameter of the same name (`$start_ts`), which the runtime binds per batch.
TIME_PARAMETERS = ("start_ts", "end_ts", "start_date", "end_date")
# Values bound in the scratch catalog, so that DuckDB types the parameters while binding.
_SAMPLE = {
    "start_ts": datetime(2000, 1, 1),
    "end_ts": datetime(2000, 1, 2),
    "start_date": date(2000, 1, 1),
    "end_date": date(2000, 1, 2),
}
# The time column's engine type decides how the runtime's guard compares it.
_TIME_TYPES = {
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


def normalize_yaml_times(data: dict[str, Any]) -> None:
    """Turn YAML's own dates (``start: 2024-01-01``) back into the text the user wrote.

    YAML reads an unquoted date as a date object; the node schema, like an editor
    checking the file, expects text.
    """
    block = data.get("incremental")
    if not isinstance(block, dict):
        return
    for key in ("start", "end"):
        value = block.get(key)
        if isinstance(value, datetime | date):
            block[key] = value.isoformat()


def incremental_config(
    doc: YamlDocument, data: dict[str, Any], diags: list[Diagnostic]
) -> IncrementalConfig | None:
    """The node's ``incremental:`` block, checked; None (with diagnostics) when unusable."""
    materialized = data.get("materialized")
    block = data.get("incremental")
    if materialized != Materialized.INCREMENTAL_BY_TIME.value:
        if block is not None:
            diags.append(
                Diagnostic(
                    "`incremental:` applies only to `materialized: incremental_by_time`",
                    doc.location(("incremental",), key=True),
                    hint="add `materialized: incremental_by_time`, or remove `incremental:`",
                )
            )
        return None
    if block is None:
        diags.append(
            Diagnostic(
                "an incremental_by_time node needs an `incremental:` block",
                doc.location(("materialized",)),
                hint="add e.g. `incremental: {time_column: order_day, schedule: '@daily', "
                "start: 2024-01-01}`",
            )
        )
        return None

    def at(key: str) -> Any:
        return doc.location(("incremental", key))

    found = len(diags)
    tz_name = block.get("timezone")
    try:
        tz = zone(tz_name)
    except IntervalError as exc:
        diags.append(Diagnostic(str(exc), at("timezone")))
        return None
    try:
        schedule = Schedule.parse(block["schedule"], tz_name)
    except IntervalError as exc:
        diags.append(Diagnostic(str(exc), at("schedule")))
    bounds: dict[str, int] = {}
    for key in ("start", "end"):
        if key not in block:
            continue
        try:
            bounds[key] = parse_time(str(block[key]), tz)
        except IntervalError as exc:
            diags.append(Diagnostic(str(exc), at(key)))
    if len(diags) > found:
        return None
    start, end = bounds["start"], bounds.get("end")
    if end is not None and end <= start:
        diags.append(
            Diagnostic(
                f"end {format_time(end)} is not after start {format_time(start)}",
                at("end"),
                hint="the end is exclusive: the table holds [start, end)",
            )
        )
        return None
    if not schedule.is_tick(start):
        first = schedule.ceil(start)
        diags.append(
            Diagnostic(
                f"start {block['start']} is not where a '{block['schedule']}' interval begins: "
                f"the first interval starts at {format_time(first)}",
                at("start"),
                hint="start on a schedule boundary to make this explicit",
                severity="warning",
            )
        )
    return IncrementalConfig(
        time_column=block["time_column"],
        schedule=schedule,
        start=start,
        end=end,
        batch_size=block.get("batch_size"),
        lookback=block.get("lookback", 0),
    )


def time_parameters(spec: NodeSpec, parsed: ParsedSql) -> tuple[str, ...]:
    """The time parameters the node's SQL reads, sorted.

    Raises:
        SqlError: a parameter in a node that is not incremental, or an unknown one.
    """
    from sqlglot import exp

    from seeknal.compiler.sql import SqlError

    assert spec.sql is not None
    if spec.incremental is not None:
        for literal in parsed.tree.find_all(exp.Literal):
            used = _QUOTED_PARAMETER.search(literal.this) if literal.is_string else None
            if used is not None:
                quoted = used.group(1)
                raise SqlError(
                    [
                        Diagnostic(
                            f"{{{{ {quoted} }}}} is inside quotes: the query would compare "
                            f"with the text '${quoted}', not the batch's bound",
                            _written_at(spec.sql, quoted),
                            hint=f"write {{{{ {quoted} }}}} without quotes (and without "
                            "DATE or TIMESTAMP before it): it is bound as a value of that type",
                        )
                    ]
                )
    found: set[str] = set()
    for node in parsed.tree.find_all(exp.Placeholder, exp.Parameter):
        inner = node.this
        name = inner.name if isinstance(inner, exp.Expr) else str(inner or "")
        where = spec.sql.find(f"${name}" if name else "?")
        if spec.incremental is None:
            raise SqlError(
                [
                    Diagnostic(
                        f"query parameter ${name or '?'} in a node that is not incremental",
                        where,
                        hint="only `materialized: incremental_by_time` nodes have time "
                        "parameters ({{ start_ts }}, {{ end_ts }}, {{ start_date }}, {{ end_date }})",
                    )
                ]
            )
        if name not in TIME_PARAMETERS:
            raise SqlError(
                [
                    Diagnostic(
                        f"unknown query parameter ${name or '?'}",
                        where,
                        hint="the runtime binds only "
                        + ", ".join(f"${p}" for p in TIME_PARAMETERS),
                    )
                ]
            )
        found.add(name)
    return tuple(sorted(found))


# A time parameter's rendering ($start_ts) as a whole word inside a string literal.
_QUOTED_PARAMETER = re.compile(r"\$(" + "|".join(TIME_PARAMETERS) + r")\b")


def _written_at(sql: SqlText, parameter: str) -> SourceLocation:
    """Where the SQL as written uses ``{{ parameter }}`` (or ``$parameter``) first."""
    found = re.search(r"\{\{-?\s*" + parameter + r"\s*-?\}\}|\$" + parameter, sql.text)
    return sql.locate(1, 1) if found is None else sql.at_offset(found.start())


def sample_values(parameters: tuple[str, ...]) -> dict[str, Any]:
    """Values for binding (never running) the SQL in the scratch catalog."""
    return {name: _SAMPLE[name] for name in parameters}


def time_type(spec: NodeSpec, bound: list[tuple[str, str]]) -> str:
    """The kind of the time column (``date``, ``timestamp`` or ``timestamptz``).

    Raises:
        SqlError: the query does not return the column, or not as a date or timestamp, or
            a DATE column under a schedule whose intervals do not start at midnight.
    """
    from seeknal.compiler.sql import SqlError

    config = spec.incremental
    assert config is not None
    types = {name.lower(): type_ for name, type_ in bound}
    where = spec.at("incremental", "time_column")
    actual = types.get(config.time_column.lower())
    if actual is None:
        raise SqlError(
            [
                Diagnostic(
                    f"time column '{config.time_column}' is not a column of the query",
                    where,
                    hint=did_you_mean(config.time_column, [n for n, _ in bound])
                    or "the query returns: " + ", ".join(n for n, _ in bound),
                )
            ]
        )
    kind = _TIME_TYPES.get(actual)
    if kind is None:
        raise SqlError(
            [
                Diagnostic(
                    f"time column '{config.time_column}' is {actual}, not a DATE or TIMESTAMP",
                    where,
                    hint=f"CAST it in the query, e.g. CAST(x AS DATE) AS {config.time_column}",
                )
            ]
        )
    if kind == "date":
        _check_whole_days(spec, config)
    return kind


def _check_whole_days(spec: NodeSpec, config: IncrementalConfig) -> None:
    """A DATE column can only be cut at midnights of the schedule's time zone."""
    from seeknal.compiler.sql import SqlError

    schedule = config.schedule
    tick = schedule.ceil(config.start)
    for _ in range(3):
        local = datetime.fromtimestamp(tick, schedule.tz)
        if (local.hour, local.minute, local.second) != (0, 0, 0):
            raise SqlError(
                [
                    Diagnostic(
                        f"time column '{config.time_column}' is a DATE, but '{schedule.expression}' "
                        f"intervals begin at {local:%H:%M}",
                        spec.at("incremental", "schedule"),
                        hint="a DATE column needs a schedule cut at midnight (@daily, @weekly, "
                        "@monthly); use a TIMESTAMP time column for finer intervals",
                    )
                ]
            )
        tick = schedule.next(tick)
