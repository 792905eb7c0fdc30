"""The plan memo: a compile with every input unchanged returns the last plan, and any
changed input (a file, the file listing, state, an embedded environment variable, the
options, the clock) makes it compile again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import invoke
from tests.conftest import edit

from seeknal.canonical import canonical_json
from seeknal.compiler import compile as compile_module
from seeknal.compiler import compile_project
from seeknal.compiler.interval_work import Window
from seeknal.errors import SeeknalError


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The projects fully loaded (the memo did not answer) since the fixture started."""
    seen: list[Path] = []
    real = compile_module.load_project

    def spy(root: Path, **kwargs: Any) -> Any:
        seen.append(root)
        return real(root, **kwargs)

    monkeypatch.setattr(compile_module, "load_project", spy)
    return seen


def settle(project: Path) -> None:
    """Files older than the memo's racy window, as in any checkout not just written."""
    old = 1_600_000_000 * 10**9
    for path in project.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(old, old))


def uncached(project: Path, **kwargs: Any) -> str:
    return canonical_json(compile_project(project, use_cache=False, **kwargs).plan)


def test_an_unchanged_project_is_not_compiled_again(minimal: Path, loads: list[Path]) -> None:
    first = compile_project(minimal)
    second = compile_project(minimal)
    assert len(loads) == 1
    assert second.text == first.text == canonical_json(second.plan)
    assert second.plan == first.plan


def test_warnings_come_back_with_the_plan(minimal: Path, loads: list[Path]) -> None:
    (minimal / "seeknal" / "transforms" / "pivoted.yml").write_text(
        "kind: transform\nname: pivoted\ntransform: |\n"
        "  SELECT * FROM (PIVOT source.orders ON customer_id IN (10, 11) USING sum(amount)"
        " GROUP BY order_id)\n",
        encoding="utf-8",
    )
    first = compile_project(minimal).warnings
    second = compile_project(minimal).warnings
    assert len(loads) == 1
    assert [w.render() for w in second] == [w.render() for w in first]
    assert first


@pytest.mark.parametrize(
    "change",
    ["node file", "data file", "new node file", "deleted macro", "project file"],
)
def test_a_changed_file_compiles_again(minimal: Path, loads: list[Path], change: str) -> None:
    (minimal / "macros").mkdir()
    (minimal / "macros" / "m.sql").write_text("{% macro m() %}1{% endmacro %}\n")
    compile_project(minimal)
    if change == "node file":
        edit(minimal / "seeknal" / "transforms" / "customer_totals.yml", "SUM(", "MAX(")
    elif change == "data file":
        with (minimal / "data" / "orders.csv").open("a", encoding="utf-8") as fh:
            fh.write("99,10,1.00\n")
    elif change == "new node file":
        (minimal / "seeknal" / "transforms" / "more.yml").write_text(
            "kind: transform\nname: more\ntransform: SELECT 1 AS one FROM source.orders\n"
        )
    elif change == "deleted macro":
        (minimal / "macros" / "m.sql").unlink()
    else:
        with (minimal / "seeknal_project.yml").open("a", encoding="utf-8") as fh:
            fh.write("vars: {x: 1}\n")
    plan = compile_project(minimal)
    assert len(loads) == 2
    assert plan.text == uncached(minimal)


def test_a_data_file_rewritten_with_the_same_size_and_mtime_compiles_again(
    minimal: Path, loads: list[Path]
) -> None:
    settle(minimal)
    compile_project(minimal)
    data = minimal / "data" / "orders.csv"
    stat = data.stat()
    data.write_text(data.read_text(encoding="utf-8").replace("25.00", "26.00"))
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data.stat().st_size == stat.st_size
    plan = compile_project(minimal)
    assert len(loads) == 2
    assert plan.text == uncached(minimal)


def test_other_state_options_or_environment_compile_again(minimal: Path, loads: list[Path]) -> None:
    first = compile_project(minimal)
    # Another environment: another memo entry.
    compile_project(minimal, environment="dev")
    assert len(loads) == 2
    # Another window changes only the work: the plan kept without its work answers.
    window = Window(end=1_700_000_000)
    windowed = compile_project(minimal, window=window)
    assert len(loads) == 2
    assert windowed.text == uncached(minimal, window=window)
    # State moved (a run applied the plan): the plan is compared with another record.
    assert invoke(minimal, "run", "--quiet").exit_code == 0
    loads.clear()
    again = compile_project(minimal)
    assert len(loads) == 1
    assert again.plan["base_state"] is not None
    assert again.text != first.text
    assert again.text == uncached(minimal)


def test_embedded_environment_variables_are_inputs(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (minimal / "seeknal_project.yml").open("a", encoding="utf-8") as fh:
        fh.write("embed_env_vars: [SEEKNAL_TEST_FLAG]\n")
    (minimal / "seeknal" / "transforms" / "flagged.yml").write_text(
        "kind: transform\nname: flagged\ntransform: |\n"
        '  SELECT \'{{ env_var("SEEKNAL_TEST_FLAG", "none") }}\' AS flag FROM source.orders\n'
    )
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "one")
    compile_project(minimal)
    compile_project(minimal)
    assert len(loads) == 1
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "two")
    plan = compile_project(minimal).plan
    assert len(loads) == 2
    assert "'two'" in plan["nodes"]["transform.flagged"]["sql"]["engine"]


def test_a_symlink_turns_the_memo_off(minimal: Path, loads: list[Path]) -> None:
    data = minimal / "data"
    (minimal / "real_data").mkdir()
    for path in data.iterdir():
        path.rename(minimal / "real_data" / path.name)
    data.rmdir()
    data.symlink_to(minimal / "real_data")
    compile_project(minimal)
    compile_project(minimal)
    assert len(loads) == 2


def test_a_plan_that_reads_the_clock_is_not_kept(
    shop: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept: list[str] = []
    monkeypatch.setattr(compile_module, "remember", lambda *a, **k: kept.append("plan"))
    edit(shop / "seeknal" / "transforms" / "daily_events.yml", "  end: 2025-01-01\n", "")
    first = compile_project(shop)
    assert kept == []  # another plan tomorrow: not kept as it is
    # Kept without its work, which the next compile plans again from the clock.
    second = compile_project(shop)
    assert len(loads) == 1
    assert second.text == first.text == uncached(shop)
    # With --end: the same plan but for its work, answered too.
    window = Window(end=1_735_689_600)
    loads.clear()
    ended = compile_project(shop, window=window)
    assert loads == []
    assert ended.text == uncached(shop, window=window)


def test_a_plan_about_to_run_with_work_is_not_kept(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seeknal run` compiles with ``executes``: a plan with work changes the state it
    was compiled against, so no later compile could use it. One without work is kept."""
    settle(minimal)
    kept: list[str] = []
    real = compile_module.remember
    monkeypatch.setattr(
        compile_module, "remember", lambda *a, **k: kept.append("plan") or real(*a, **k)
    )
    with_work = compile_project(minimal, executes=True)
    assert with_work.plan["work"] and kept == []
    # The plan kept without its work answers: only the state could have moved.
    again = compile_project(minimal, executes=True)
    assert len(loads) == 1 and again.text == with_work.text
    assert invoke(minimal, "run", "--quiet").exit_code == 0
    nothing = compile_project(minimal, executes=True)
    assert not nothing.plan["work"] and kept == ["plan"]
    compile_project(minimal, executes=True)
    assert len(loads) == 2  # the run promoted (a new record): compiled once; then answered


def test_the_example_with_its_end_in_the_past_is_kept(shop: Path, loads: list[Path]) -> None:
    first = compile_project(shop)
    second = compile_project(shop)
    assert len(loads) == 1
    assert second.text == first.text == uncached(shop)


def test_a_directory_turned_into_a_symlink_after_the_plan_was_kept(
    minimal: Path, loads: list[Path]
) -> None:
    first = compile_project(minimal)
    data = minimal / "data"
    data.rename(minimal / "elsewhere")
    edit(minimal / "elsewhere" / "orders.csv", "25.00", "99.00")
    data.symlink_to(minimal / "elsewhere")
    again = compile_project(minimal)
    assert len(loads) == 2
    assert again.text != first.text


def test_a_plan_from_the_memo_keeps_every_node_entry(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compile after a memo answer (other state, other options) reuses the nodes."""
    from seeknal.compiler import transform

    compile_project(minimal)
    compile_project(minimal)  # answered by the memo
    analyzed: list[str] = []
    real = transform.analyze_sql_node

    def spy(spec: Any, *args: Any, **kwargs: Any) -> Any:
        analyzed.append(spec.id)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(transform, "analyze_sql_node", spy)
    compile_project(minimal, environment="dev")
    assert len(loads) == 2
    assert analyzed == []


def test_a_damaged_memo_file_is_a_miss(minimal: Path, loads: list[Path]) -> None:
    from seeknal.compiler.cache import project_cache_file

    expected = compile_project(minimal).text
    memos = sorted(project_cache_file(minimal).parent.glob("memo-*.json"))
    assert len(memos) == 2  # the plan, and the plan kept without its work
    texts = [memo.with_suffix(".plan") for memo in memos]  # each plan, beside its memo
    assert all(b'"plan_id"' in text.read_bytes() for text in texts)
    kept = [memo.read_bytes() for memo in memos]
    for damage in (b"", b"{", b'{"format": 1}', *(k.replace(b"files", b"x") for k in kept)):
        for memo in memos:
            memo.write_bytes(damage)
        assert compile_project(minimal).text == expected
    for damage in (b"", b"\xff", b"{}", expected.replace("plan_id", "x").encode()):
        for text in texts:
            text.write_bytes(damage)
        assert compile_project(minimal).text == expected
    for text in texts:
        text.unlink()
    assert compile_project(minimal).text == expected


def test_the_oldest_memos_go_with_their_plan_texts(minimal: Path) -> None:
    from seeknal.compiler.cache import _MEMOS_KEPT, project_cache_file

    compile_project(minimal)
    directory = project_cache_file(minimal).parent
    stray = directory / "memo-0123456789abcdef0123456789abcdef01234567.plan"
    stray.write_text("a text whose entry was never written (a crash between the two)")
    for n in range(_MEMOS_KEPT):
        compile_project(minimal, environment=f"env{n}")
    assert not stray.exists()
    memos = {p.stem for p in directory.glob("memo-*.json")}
    assert len(memos) == _MEMOS_KEPT
    assert {p.stem for p in directory.glob("memo-*.plan")} == memos


def test_an_end_less_than_a_year_back_still_reads_the_clock() -> None:
    import time

    from seeknal.compiler.memo import _reads_the_clock
    from seeknal.compiler.model import IncrementalConfig, Materialized
    from seeknal.intervals import Schedule

    class Spec:
        materialized = Materialized.INCREMENTAL_BY_TIME

        def __init__(self, end: int | None) -> None:
            self.incremental = IncrementalConfig("t", Schedule.parse("@yearly"), 0, end)

    now = int(time.time())
    assert _reads_the_clock(None, [Spec(None)])  # type: ignore[list-item]
    assert _reads_the_clock(None, [Spec(now - 200 * 86_400)])  # type: ignore[list-item]
    assert not _reads_the_clock(None, [Spec(now - 400 * 86_400)])  # type: ignore[list-item]
    assert not _reads_the_clock(Window(end=now), [Spec(None)])  # type: ignore[list-item]


def schema_walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Forget what this process found valid (as a later process would), and list from
    now on every schema a document is walked against."""
    from seeknal import schemas
    from seeknal.runtime import artifact

    monkeypatch.setattr(schemas, "_KNOWN_VALID", set())
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    walked: list[str] = []
    real = schemas.iter_errors
    monkeypatch.setattr(
        schemas, "iter_errors", lambda name, doc: walked.append(name) or real(name, doc)
    )
    return walked


def test_a_plan_from_the_memo_is_known_valid(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo keeps only plans build_plan validated: the runtime does not walk the
    schema of one again (a no-op run at 5,000 nodes spent a quarter second on that)."""
    from seeknal.runtime import verify_plan

    settle(minimal)
    compile_project(minimal)
    walked = schema_walks(monkeypatch)
    remembered = compile_project(minimal)
    assert len(loads) == 1  # the memo answered
    verify_plan(remembered.plan)
    assert "plan" not in walked


MARCH = 1_709_251_200  # 2024-03-01T00:00:00Z
DAY = 86_400


def test_the_plan_kept_without_its_work_follows_the_state(shop: Path, loads: list[Path]) -> None:
    """Day after day, a restatement, a window: only the state moves, and the plan kept
    without its work gives, byte for byte, the plan a full compile gives."""
    settle(shop)
    windows = [
        None,
        Window(end=MARCH + 5 * DAY),
        Window(start=MARCH - 10 * DAY, end=MARCH + 2 * DAY),
        Window(start=MARCH - 20 * DAY, end=MARCH - 15 * DAY, restate=("transform.daily_events",)),
    ]
    steps = [
        ["run", "--quiet", "--end", "2024-02-29"],  # applies the plan: a new record
        ["run", "--quiet", "--end", "2024-03-02"],
        ["run", "--quiet", "--end", "2024-03-03"],
        ["run", "--quiet", "--restate", "transform.daily_events", "--start", "2024-02-10"],
    ]
    answered = 0
    for step in steps:
        assert invoke(shop, *step).exit_code == 0
        for window in windows:
            loads.clear()
            plan = compile_project(shop, window=window)
            answered += not loads
            if not loads:  # the memo's text, never parsed nor serialized again
                assert plan.parsed is None
            assert plan.text == uncached(shop, window=window), (step, window)
            assert plan.plan == json.loads(plan.text)
    # Every compile after the first step's: the runs only added and restated intervals.
    assert answered >= 3 * len(windows)


def test_a_plan_kept_without_its_work_is_known_valid_with_its_new_work(
    shop: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given its new work, the kept plan is not walked against the schema again, by the
    compiler or the runtime: its other members were validated when it was kept, and the
    new ones are checked on their own."""
    from seeknal.runtime import verify_plan_text

    settle(shop)
    assert invoke(shop, "run", "--quiet", "--end", "2024-02-29").exit_code == 0
    compile_project(shop, window=Window(end=MARCH))  # keeps the plan
    assert invoke(shop, "run", "--quiet", "--end", "2024-03-01").exit_code == 0
    walked = schema_walks(monkeypatch)
    loads.clear()
    result = compile_project(shop, window=Window(end=MARCH + 3 * DAY))
    assert not loads  # answered by the plan kept without its work
    plan = verify_plan_text(result.text)
    assert plan["work"] and "plan" not in walked
    assert result.text == uncached(shop, window=Window(end=MARCH + 3 * DAY))


def test_new_work_the_schema_refuses_falls_back_to_the_full_compile(
    shop: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug giving an invalid work list is the full compile's to report, as ever."""
    from seeknal import schemas

    settle(shop)
    compile_project(shop, window=Window(end=MARCH))
    assert invoke(shop, "run", "--quiet", "--end", "2024-02-20").exit_code == 0
    monkeypatch.setattr(schemas, "is_valid_member", lambda name, key, value: key != "work")
    loads.clear()
    compile_project(shop, window=Window(end=MARCH))
    assert loads  # compiled in full


def test_an_unknown_restated_node_is_still_reported(shop: Path, loads: list[Path]) -> None:
    compile_project(shop)
    with pytest.raises(SeeknalError, match=r"--restate: unknown node 'transform\.nope'"):
        compile_project(shop, window=Window(restate=("transform.nope",)))


def test_a_recall_keeps_the_stats_of_files_that_settled(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files hashed from the text a compile read, or changed just before it, carry no
    stat in the memo: the first recall hashes them again and, once they have settled,
    keeps their stats, so the next recall hashes nothing."""
    from seeknal.compiler import memo

    expected = compile_project(minimal).text
    monkeypatch.setattr(memo, "RACY_NS", 0)  # everything has settled
    hashed: list[str] = []
    real = memo.file_sha256
    monkeypatch.setattr(memo, "file_sha256", lambda p: hashed.append(str(p)) or real(p))
    assert compile_project(minimal).text == expected
    assert hashed  # the node files, at least
    hashed.clear()
    assert compile_project(minimal).text == expected
    assert hashed == [] and len(loads) == 1
    # A file edited since is still seen: its stat moved.
    edit(minimal / "data" / "orders.csv", "25.00", "26.00")
    assert compile_project(minimal).text == uncached(minimal)


def test_a_node_file_saved_during_a_compile_is_not_missed(
    minimal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = compile_module.load_project

    def load_then_save(root: Path, **kwargs: Any) -> Any:
        loaded = real(root, **kwargs)
        (root / "seeknal" / "transforms" / "late.yml").write_text(
            "kind: transform\nname: late\ntransform: SELECT 1 AS one FROM source.orders\n"
        )
        return loaded

    monkeypatch.setattr(compile_module, "load_project", load_then_save)
    assert "transform.late" not in compile_project(minimal).plan["nodes"]
    monkeypatch.setattr(compile_module, "load_project", real)
    assert "transform.late" in compile_project(minimal).plan["nodes"]


def test_damaged_kept_nodes_are_a_miss(shop: Path) -> None:
    from seeknal.compiler.cache import project_cache_file

    compile_project(shop)
    window = Window(end=MARCH)
    expected = uncached(shop, window=window)
    kept = [
        path
        for path in project_cache_file(shop).parent.glob("memo-*.json")
        if b'"nodes_sha256"' in path.read_bytes()
    ]
    assert len(kept) == 1
    original = kept[0].read_bytes()
    assert original.count(b'"batch_size":31') == 1  # the kept node; the plan text is escaped
    for damage in (b'"batch_size":7', b'"batch_size":"31"', b'"batch_size":{}'):
        kept[0].write_bytes(original.replace(b'"batch_size":31', damage))
        assert compile_project(shop, window=window).text == expected
        kept[0].write_bytes(original)


def test_the_listing_names_node_and_macro_files_and_refuses_symlinks(tmp_path: Path) -> None:
    from seeknal.compiler.memo import listing

    for rel in [
        "seeknal/a.yml",
        "seeknal/b.yaml",
        "seeknal/.hidden.yml",
        "seeknal/.h/x.yml",
        "seeknal/sub/deeper/c.yml",
        "seeknal/sub/d.txt",
        "seeknal/dir.yml/e.yml",
        "macros/m.sql",
        "macros/n.yml",
        "elsewhere/f.yml",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    assert listing(tmp_path) == [
        "macros/m.sql",
        "seeknal/a.yml",
        "seeknal/b.yaml",
        "seeknal/dir.yml/e.yml",
        "seeknal/sub/deeper/c.yml",
    ]
    (tmp_path / "seeknal/.h/link.yml").symlink_to(tmp_path / "seeknal/a.yml")
    assert listing(tmp_path) is not None  # in a hidden directory: never walked
    for link in ["seeknal/sub/deeper/.link", "macros/link.txt", "seeknal/linked_dir"]:
        (tmp_path / link).symlink_to(tmp_path / "elsewhere")
        assert listing(tmp_path) is None, link
        (tmp_path / link).unlink()
    assert listing(tmp_path) is not None


@pytest.mark.parametrize("base_state", [None, "a" * 64])
@pytest.mark.parametrize("work", ["none", "kept", "two"])
def test_new_work_spliced_into_a_plan_is_what_the_plan_gives_in_full(
    minimal: Path, base_state: str | None, work: str
) -> None:
    from seeknal.compiler.emit import finish_plan, with_new_work

    text = compile_project(minimal).text
    plan = json.loads(text)
    entries = {"none": [], "kept": plan["work"], "two": plan["work"][:1] * 2}[work]
    whole = {k: v for k, v in plan.items() if k != "plan_id"}
    expected = finish_plan({**whole, "base_state": base_state, "work": entries})[1]
    assert with_new_work(text, base_state, entries) == expected
    # Spliced again into its own output: the same as once.
    assert with_new_work(expected, base_state, entries) == expected
    assert with_new_work(text, "not a hash", entries) is None  # refused by the schema
    assert with_new_work(json.dumps(plan), base_state, entries) is None  # not canonical


def test_the_listing_walks_any_depth_and_gives_up_on_an_unreadable_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.compiler import memo

    deep = tmp_path / "seeknal" / "/".join(["d"] * 600)
    deep.mkdir(parents=True)
    (deep / "x.yml").write_text("x", encoding="utf-8")
    assert memo.listing(tmp_path) == [f"seeknal/{'/'.join(['d'] * 600)}/x.yml"]
    (tmp_path / "seeknal" / "locked").mkdir()
    real = os.scandir

    def scandir(path: str) -> Any:
        if path.endswith("locked"):  # as for a directory this user cannot read
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(memo.os, "scandir", scandir)
    assert memo.listing(tmp_path) is None  # the full compile says what is wrong


def test_the_memo_keys_on_the_state_as_read_not_serialized_again(
    minimal: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state read from its files is digested from their bytes: no compile the memo
    answers serializes the whole state (15 ms at 1,000 nodes); any write is a change."""
    from seeknal.state.base import State
    from seeknal.state.file import FileStateBackend

    assert invoke(minimal, "run", "--quiet").exit_code == 0
    expected = compile_project(minimal).text
    loads.clear()

    def serialized(state: State) -> dict[str, Any]:
        raise AssertionError("the state was serialized to be digested")

    monkeypatch.setattr(State, "to_document", serialized)
    assert compile_project(minimal).text == expected
    assert loads == []
    monkeypatch.undo()
    # A record written again as it was (a journal line) reads as other bytes: the plan
    # memo misses (the one kept without its work answers), and the plan is the same.
    backend = FileStateBackend(minimal / "target" / "state")
    state = backend.read()
    assert state.source_digest() == backend.read().source_digest()
    name, record = next(iter(state.snapshots.items()))
    with backend.lock():
        backend.record_snapshot(name, record)
    assert backend.read().snapshots == state.snapshots
    assert backend.read().source_digest() != state.source_digest()
    assert compile_project(minimal).text == expected == uncached(minimal)
    assert State().source_digest() is None
