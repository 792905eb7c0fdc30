"""categorize_change against a corpus of hand-labelled (old, new) SQL pairs.

The labels in change_corpus.yaml come from SQL semantics. Three checks run on them:

- accuracy: the share of pairs whose category is the label's, at least 97%;
- safety, with zero tolerance: no pair is ever called safer than its label (a change
  that alters existing rows or columns called non_breaking, metadata or unchanged);
- the labels themselves: every pair runs on sample tables in DuckDB, and for each pair
  labelled safe the existing columns hold exactly the same rows before and after.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from seeknal.compiler import Change, ChangeCategory, EditKind, categorize_change

CORPUS = yaml.safe_load((Path(__file__).parent / "change_corpus.yaml").read_text())
CASES: list[dict[str, Any]] = CORPUS["cases"]
SCHEMAS: dict[str, Any] = CORPUS["schemas"]
# The higher, the more a plan does about a change: a prediction below its label is unsafe.
RANK = {
    ChangeCategory.UNCHANGED: 0,
    ChangeCategory.METADATA: 1,
    ChangeCategory.NON_BREAKING: 2,
    ChangeCategory.BREAKING: 3,
}
SAFE = {"unchanged", "metadata", "non_breaking"}
# Edit kinds that only the plan (not a SQL text) can produce.
NODE_LEVEL = {
    EditKind.MATERIALIZATION_CHANGED,
    EditKind.METADATA_CHANGED,
    EditKind.TABLE_CHANGED_ELSEWHERE,
}


def categorize(case: dict[str, Any]) -> Change:
    schema = SCHEMAS[case["schema"]] if "schema" in case else None
    return categorize_change(
        case["old"], case["new"], dialect=case.get("dialect", "duckdb"), schema=schema
    )


def detail_text(change: Change) -> set[str]:
    out = set()
    for d in change.details:
        out.add(d.kind.value)
        if d.column is not None:
            out.add(f"{d.kind.value}:{d.column}")
            if d.kind is EditKind.COLUMN_RENAMED:
                out.add(f"{d.kind.value}:{d.column}<-{d.previous}")
    return out


@pytest.fixture(scope="module")
def results() -> dict[str, Change]:
    return {case["id"]: categorize(case) for case in CASES}


def test_corpus_covers_every_rule() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    categories = {case["category"] for case in CASES}
    assert categories == {"unchanged", "metadata", "non_breaking", "breaking"}
    expected_kinds = {d.split(":")[0] for case in CASES for d in case.get("details", [])}
    assert expected_kinds == {k.value for k in EditKind} - NODE_LEVEL
    for case in CASES:
        assert case.get("note"), case["id"]
        assert ChangeCategory(case["category"]) in RANK, case["id"]


def test_accuracy_is_at_least_97_percent(results: dict[str, Change]) -> None:
    wrong = [
        f"  {case['id']}: expected {case['category']}, got {results[case['id']].category}"
        for case in CASES
        if results[case["id"]].category != case["category"]
    ]
    accuracy = 1 - len(wrong) / len(CASES)
    report = f"categorize_change accuracy: {accuracy:.1%} on {len(CASES)} pairs"
    print("\n" + "\n".join([report, *wrong]))
    assert accuracy >= 0.97, "\n".join([report, *wrong])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_never_safer_than_the_label(case: dict[str, Any], results: dict[str, Change]) -> None:
    """Zero tolerance: a change is never called safer than it is."""
    got = results[case["id"]]
    expected = ChangeCategory(case["category"])
    assert RANK[got.category] >= RANK[expected], (got.category, got.details)
    if expected is ChangeCategory.BREAKING:
        assert got.category is ChangeCategory.BREAKING


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_details_of_a_right_category(case: dict[str, Any], results: dict[str, Change]) -> None:
    got = results[case["id"]]
    if got.category != case["category"]:
        return  # counted by the accuracy test
    if got.category in (ChangeCategory.UNCHANGED, ChangeCategory.METADATA):
        assert got.details == ()
        assert not got.changed_columns and not got.rows_changed
        return
    missing = set(case.get("details", [])) - detail_text(got)
    assert not missing, (missing, [d.to_json() for d in got.details])
    if "rows_changed" in case:
        assert got.rows_changed is case["rows_changed"]
    if "changed_columns" in case:
        assert got.changed_columns == frozenset(case["changed_columns"])
    if got.category is ChangeCategory.NON_BREAKING:
        assert not got.rows_changed and not got.changed_columns


def test_a_pair_takes_well_under_100_ms() -> None:
    """The median CPU time per pair (this process's: other work does not count)."""
    categorize(CASES[0])  # imports and caches warmed up
    times = []
    for case in CASES:
        start = time.process_time()
        categorize(case)
        times.append(time.process_time() - start)
    median = statistics.median(times)
    assert median < 0.1, f"median {median * 1000:.1f} ms per pair"


# -- the labels, checked on sample data ---------------------------------------------

ROWS = {
    "orders": [
        (1, 10, "25.50", "shipped", "2024-01-01 10:00", ["a", "b"]),
        (2, 10, "100.00", "pending", "2024-01-02 11:00", []),
        (3, 11, None, "shipped", "2024-01-03 12:00", ["c"]),
        (4, 12, "7.25", "cancelled", "2024-01-03 13:00", None),
        (5, None, "60.00", "Shipped", "2024-01-04 09:00", ["a"]),
        (6, 11, "25.50", "shipped", "2024-01-05 09:00", ["b", "b"]),
        (7, 13, "12.00", "pending", "2024-01-05 10:00", ["B"]),
    ],
    "customers": [
        (10, "Ann", "DE", "2023-01-01"),
        (11, "Bob", "FR", "2023-02-01"),
        (12, "Cy", "DE", None),
        (13, "Dee", None, "2023-03-01"),
    ],
    "customers_archive": [
        (10, "Ann", "DE", "2023-01-01"),
        (14, "Eve", "FR", "2022-05-01"),
        (14, "Eve", "FR", "2022-05-01"),
    ],
    "payments": [
        (100, 1, "25.50", "card"),
        (101, 2, "50.00", "card"),
        (102, 2, "50.00", "cash"),
        (103, 3, "10.00", "card"),
        (104, 9, "5.00", "cash"),
    ],
}


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for table, columns in SCHEMAS["shop"]["raw"].items():
        con.execute(
            f"CREATE TABLE raw.{table} ("
            + ", ".join(f"{name} {type_}" for name, type_ in columns.items())
            + ")"
        )
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"INSERT INTO raw.{table} VALUES ({marks})", ROWS[table])
    return con


def run(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()


def column_values(names: list[str], rows: list[tuple[Any, ...]], keep: list[str]) -> list[str]:
    """The rows restricted to ``keep`` (by name, case-insensitively), as sorted text."""
    index = [[n.lower() for n in names].index(k.lower()) for k in keep]
    return sorted(repr(tuple(_plain(row[i]) for i in index)) for row in rows)


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


RUNNABLE = [c for c in CASES if c.get("runs", True) and c.get("dialect", "duckdb") == "duckdb"]


@pytest.mark.parametrize("case", RUNNABLE, ids=[c["id"] for c in RUNNABLE])
def test_label_holds_on_sample_data(
    case: dict[str, Any], warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Both queries run; a pair labelled safe keeps every existing column's rows."""
    old_names, old_rows = run(warehouse, case["old"])
    new_names, new_rows = run(warehouse, case["new"])
    if case["category"] in SAFE:
        if case["category"] == "non_breaking":
            assert [n for n in new_names if n in old_names] == old_names
        else:
            assert new_names == old_names
        assert column_values(old_names, old_rows, old_names) == column_values(
            new_names, new_rows, old_names
        )
    elif case.get("rows_changed") is False and "changed_columns" in case:
        kept = [
            n
            for n in old_names
            if n not in case["changed_columns"] and n.lower() in {m.lower() for m in new_names}
        ]
        assert column_values(old_names, old_rows, kept) == column_values(new_names, new_rows, kept)
