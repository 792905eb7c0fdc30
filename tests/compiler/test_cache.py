"""The compile cache never changes the plan, and a warm compile does no analysis.

Every project is compiled three ways: with an empty cache, again with the cache the first
compile left, and without any cache. The three plans (and error texts) must be the same
bytes. Then the cache file is damaged in every way we can think of; the plan stays the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.bench.load import load_bench_module
from tests.cli.conftest import invoke
from tests.conftest import EXAMPLE, FIXTURES, applied, copy_project, edit

from seeknal.canonical import canonical_json
from seeknal.compiler import cache as cache_module
from seeknal.compiler import compile_project
from seeknal.compiler.cache import CompileCache, cache_directory, project_cache_file
from seeknal.errors import CompileFailed

BROKEN = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("broken_"))
generate = load_bench_module("generate")


def plan_text(project: Path, *, use_cache: bool = True) -> str:
    return canonical_json(compile_project(project, use_cache=use_cache).plan)


def error_text(project: Path, *, use_cache: bool = True) -> str:
    with pytest.raises(CompileFailed) as info:
        compile_project(project, use_cache=use_cache)
    return info.value.render()


def write_node(project: Path, name: str, sql: str, *, inputs: tuple[str, ...] = ()) -> None:
    lines = ["kind: transform", f"name: {name}"]
    if inputs:
        lines.append("inputs:")
        lines += [f"  - ref: {ref}" for ref in inputs]
    lines.append("transform: |")
    lines += ["  " + line for line in sql.splitlines()]
    path = project / "seeknal" / "transforms" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """A layered project of 30 transforms: joins, CTEs, windows, all three ref styles."""
    return generate.generate_project(tmp_path / "generated", 30, rows=200)


@pytest.fixture
def approximate(minimal: Path) -> Path:
    """Nodes whose lineage sqlglot cannot follow (PIVOT, COLUMNS): warnings come from the cache."""
    write_node(
        minimal,
        "pivoted",
        "SELECT * FROM (PIVOT source.orders ON customer_id IN (10, 11) USING sum(amount) "
        "GROUP BY order_id)",
    )
    write_node(minimal, "by_pattern", "SELECT COLUMNS('.*_id') FROM source.orders")
    return minimal


@pytest.fixture
def analysis_forbidden(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make any SQL analysis, DuckDB catalog or Jinja rendering fail the test."""

    def forbid() -> None:
        from seeknal.compiler import catalog, render, sql, transform

        def boom(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a warm compile analyzed, bound or rendered a node")

        monkeypatch.setattr(transform, "analyze_sql_node", boom)
        monkeypatch.setattr(sql, "parse_sql", boom)
        monkeypatch.setattr(catalog.ScratchCatalog, "__init__", boom)
        monkeypatch.setattr(render, "make_renderer", boom)

    return forbid


@pytest.mark.parametrize("name", ["shop", "minimal", "generated", "approximate"])
def test_cold_warm_and_uncached_plans_are_byte_identical(
    name: str, request: pytest.FixtureRequest, analysis_forbidden: Callable[[], None]
) -> None:
    project: Path = request.getfixturevalue(name)
    cold = plan_text(project)
    assert project_cache_file(project).is_file()
    uncached = plan_text(project, use_cache=False)
    analysis_forbidden()
    warm = plan_text(project)
    assert cold == warm == uncached


def test_warnings_are_the_same_from_the_cache(approximate: Path) -> None:
    cold = compile_project(approximate).warnings
    warm = compile_project(approximate).warnings
    assert [w.render() for w in cold] == [w.render() for w in warm]
    assert any("approximate" in w.message for w in warm)


@pytest.mark.parametrize("name", BROKEN)
def test_errors_are_the_same_cold_warm_and_uncached(name: str, tmp_path: Path) -> None:
    project = copy_project(FIXTURES / name, tmp_path / name)
    cold = error_text(project)
    warm = error_text(project)
    assert cold == warm == error_text(project, use_cache=False)


def test_uncached_compile_writes_no_cache(shop: Path, _compile_cache: Path) -> None:
    compile_project(shop, use_cache=False)
    assert not any(_compile_cache.iterdir())


def test_environment_variable_turns_the_cache_off(
    shop: Path, _compile_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEEKNAL_NO_CACHE", "1")
    compile_project(shop)
    assert not any(_compile_cache.iterdir())
    monkeypatch.setenv("SEEKNAL_NO_CACHE", "0")
    compile_project(shop)
    assert project_cache_file(shop).is_file()


def test_the_cache_lives_outside_the_project(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sorted(str(p) for p in shop.rglob("*"))
    compile_project(shop)
    assert sorted(str(p) for p in shop.rglob("*")) == before
    monkeypatch.delenv("SEEKNAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "xdg" / "seeknal"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says so
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_directory() == tmp_path / "home" / ".cache" / "seeknal"
    # One file per project, named by its absolute path: two checkouts never share one.
    other = copy_project(EXAMPLE, tmp_path / "other")
    assert project_cache_file(shop) != project_cache_file(other)


def test_an_unwritable_cache_is_no_error(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("SEEKNAL_CACHE_DIR", str(blocker))
    assert plan_text(shop) == plan_text(shop, use_cache=False)


def _cache_document(project: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(project_cache_file(project).read_text(encoding="utf-8"))
    return document


def _write_cache(project: Path, document: Any) -> None:
    project_cache_file(project).write_text(json.dumps(document), encoding="utf-8")


def _damaged_documents(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    entries = document["entries"]
    first_key = sorted(entries)[0]
    yield "not json", None
    yield "another code version", {**document, "code": "0" * 64}
    yield "another format", {**document, "format": 999}
    yield "entries not a mapping", {**document, "entries": []}
    yield "not an object", [1, 2, 3]
    # Each entry filed under another entry's key: a key check must refuse them all.
    keys = sorted(entries)
    yield (
        "keys shuffled",
        {
            **document,
            "entries": dict(zip(keys, [entries[k] for k in keys[1:] + keys[:1]], strict=True)),
        },
    )
    yield (
        "kinds swapped",
        {
            **document,
            "entries": {
                k: {**v, "kind": "sql" if v["kind"] != "sql" else "front"}
                for k, v in entries.items()
            },
        },
    )

    def reshape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reshape(v) for k, v in list(value.items())[1:]}  # drop a field
        if isinstance(value, list):
            return [reshape(v) for v in value[:-1]] + [42]
        if isinstance(value, str):
            return 7
        return "x"

    yield (
        "values of the wrong shape",
        {
            **document,
            "entries": {k: {**v, "value": reshape(v["value"])} for k, v in entries.items()},
        },
    )
    yield (
        "values of another type",
        {**document, "entries": {k: {**v, "value": [v["value"]]} for k, v in entries.items()}},
    )
    yield "one entry is null", {**document, "entries": {**entries, first_key: None}}


def test_a_damaged_cache_cannot_change_the_plan(shop: Path) -> None:
    expected = plan_text(shop, use_cache=False)
    plan_text(shop)
    good = _cache_document(shop)
    for what, damaged in _damaged_documents(good):
        if damaged is None:
            project_cache_file(shop).write_bytes(b'{"format": 1, "entr')  # truncated
        else:
            _write_cache(shop, damaged)
        assert plan_text(shop) == expected, what
    # Empty and binary files too.
    for raw in (b"", b"\x00\xff" * 100):
        project_cache_file(shop).write_bytes(raw)
        assert plan_text(shop) == expected


def test_a_foreign_cache_cannot_change_the_plan(shop: Path, tmp_path: Path) -> None:
    """Another project's cache file copied over this one's: its entries never match."""
    other = generate.generate_project(tmp_path / "other", 12, rows=100)
    plan_text(other)
    expected = plan_text(shop, use_cache=False)
    project_cache_file(shop).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_cache_file(other), project_cache_file(shop))
    assert plan_text(shop) == expected
    # And merged into it: only this project's own entries are ever used.
    plan_text(shop)
    mine = _cache_document(shop)
    theirs = json.loads(project_cache_file(other).read_text(encoding="utf-8"))
    _write_cache(shop, {**mine, "entries": {**theirs["entries"], **mine["entries"]}})
    assert plan_text(shop) == expected


def test_stale_entries_of_an_older_version_of_a_node_are_not_used(shop: Path) -> None:
    plan_text(shop)
    path = shop / "seeknal" / "transforms" / "daily_revenue.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("SUM(", "MAX("), encoding="utf-8")
    assert plan_text(shop) == plan_text(shop, use_cache=False)


def test_the_cache_is_deletable_at_any_time(shop: Path, _compile_cache: Path) -> None:
    expected = plan_text(shop)
    shutil.rmtree(_compile_cache)
    assert plan_text(shop) == expected
    project_cache_file(shop).unlink()
    assert plan_text(shop) == expected


def test_a_plan_against_state_is_the_same_from_the_cache(shop: Path) -> None:
    """Categorization against an environment's record reads cached analyses alike."""
    state = applied(compile_project(shop).plan)
    edit(shop / "seeknal" / "transforms" / "daily_revenue.yml", "SUM(", "MAX(")
    for environment in ("prod", "dev"):
        cold = compile_project(shop, environment=environment, state=state, use_cache=False).plan
        compile_project(shop, environment=environment, state=state)
        warm = compile_project(shop, environment=environment, state=state).plan
        assert canonical_json(warm) == canonical_json(cold)
    assert warm["nodes"]["transform.daily_revenue"]["change"]["category"] == "breaking"


def test_error_positions_in_node_files_are_the_same_from_the_cache(minimal: Path) -> None:
    """A cached node file keeps the marks of its values: a later error points alike."""
    write_node(minimal, "wide", "SELECT order_id,\n  amount\nFROM source.orders")
    plan_text(minimal)
    # Only the SQL's input changes: the node file comes from the cache, its SQL fails.
    edit(minimal / "data" / "orders.csv", "amount", "total")
    cold = error_text(minimal, use_cache=False)
    assert error_text(minimal) == cold
    assert "wide.yml:5:" in cold


def test_data_files_are_hashed_again_only_when_they_change(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = shop / "seeds" / "country_codes.csv"
    old = os.stat(seed).st_mtime_ns - 10_000_000_000
    for path in shop.rglob("*.csv"):
        os.utime(path, ns=(old, old))
    monkeypatch.setattr(cache_module, "RACY_NS", -(10**12))  # ctime is now: trust it anyway
    plan_text(shop)
    hashed: list[str] = []
    real = cache_module.FileHashes._hash

    def spy(self: Any, rel: str, path: Path) -> str:
        hashed.append(path.name)
        return real(self, rel, path)

    monkeypatch.setattr(cache_module.FileHashes, "_hash", spy)
    expected = plan_text(shop, use_cache=False)
    hashed.clear()
    assert plan_text(shop) == expected
    assert not [name for name in hashed if name.endswith(".csv")]
    # Same size, same mtime, new bytes: the change time still tells.
    text = seed.read_text(encoding="utf-8")
    seed.write_text(text.replace("Nowhere", "Elsewhere") if "Nowhere" in text else text.upper())
    os.utime(seed, ns=(old, old))
    assert plan_text(shop) == plan_text(shop, use_cache=False)
    assert "country_codes.csv" in hashed


def test_a_file_changed_just_before_hashing_is_hashed_again(shop: Path) -> None:
    """Within the clock's granularity a second edit could keep size and times: not trusted."""
    plan_text(shop)  # every file was just copied: none settled, none remembered
    document = _cache_document(shop)
    assert not [e for e in document["entries"].values() if e["kind"] == "file"]


def test_the_code_fingerprint_covers_seeknal_and_its_libraries() -> None:
    fingerprint = cache_module.code_fingerprint()
    assert len(fingerprint) == 64
    versions = cache_module._library_versions()
    assert set(versions) == {"sqlglot", "sqlglotc", "duckdb", "jinja2", "pyyaml"}
    assert versions["duckdb"] != "-" and versions["sqlglot"] != "-"


def test_the_code_fingerprint_follows_every_source_file(tmp_path: Path) -> None:
    """A source file counts by its stat: an edit moves its ctime, so the fingerprint
    changes even when size and mtime are put back."""
    source = tmp_path / "module.py"
    source.write_text("A = 1\n")
    before = cache_module.fingerprint_of_package(tmp_path)
    assert cache_module.fingerprint_of_package(tmp_path) == before
    stat = source.stat()
    source.write_text("A = 2\n")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = cache_module.fingerprint_of_package(tmp_path)
    assert edited != before
    # The example project inside the package is data, not code.
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "data.json").write_text("{}")
    assert cache_module.fingerprint_of_package(tmp_path) == edited


class _Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from seeknal.compiler import transform

        self.analyzed: list[str] = []
        real = transform.analyze_sql_node

        def spy(spec: Any, *args: Any, **kwargs: Any) -> Any:
            self.analyzed.append(spec.id)
            return real(spec, *args, **kwargs)

        monkeypatch.setattr(transform, "analyze_sql_node", spy)


def _downstream(plan: dict[str, Any], node: str) -> set[str]:
    readers = {
        other for other, entry in plan["nodes"].items() if node in entry.get("depends_on", [])
    }
    return readers | {n for r in readers for n in _downstream(plan, r)}


def _transform_with_readers(
    project: Path, plan: dict[str, Any], written: str
) -> tuple[str, Path, str]:
    """A transform that has readers and whose SQL contains ``written``: its id, its
    node file and that file's text."""
    target = next(
        node
        for node, entry in plan["nodes"].items()
        if node.startswith("transform.")
        and _downstream(plan, node)
        and written in entry["sql"]["raw"]
    )
    path = project / plan["nodes"][target]["file"]
    return target, path, path.read_text(encoding="utf-8")


def test_a_changed_file_recompiles_that_node_only(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = compile_project(generated).plan
    spy = _Spy(monkeypatch)
    # A new filter constant: same output columns, so nothing downstream is analyzed again.
    target, path, text = _transform_with_readers(generated, plan, "WHERE revenue >")
    path.write_text(text.replace("WHERE revenue > ", "WHERE revenue >= ", 1), encoding="utf-8")
    changed = compile_project(generated).plan
    assert spy.analyzed == [target]
    # ... yet every node downstream gets a new snapshot, with its engine SQL renamed.
    for node in _downstream(plan, target):
        assert changed["nodes"][node]["snapshot"] != plan["nodes"][node]["snapshot"]
    assert canonical_json(changed) == plan_text(generated, use_cache=False)


def test_a_changed_output_schema_recompiles_the_direct_readers(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = compile_project(generated).plan
    spy = _Spy(monkeypatch)
    target, path, text = _transform_with_readers(generated, plan, "AS score\nFROM base")
    # score becomes a DOUBLE computed differently and a new column appears.
    path.write_text(
        text.replace(") AS score\n", ") AS score,\n      1 AS extra\n", 1), encoding="utf-8"
    )
    readers = {n for n, e in plan["nodes"].items() if target in e.get("depends_on", [])}
    changed = compile_project(generated).plan
    assert set(spy.analyzed) == {target} | readers
    assert canonical_json(changed) == plan_text(generated, use_cache=False)


def test_a_changed_seed_renames_the_tables_downstream_sql_reads(shop: Path) -> None:
    plan = compile_project(shop).plan
    seed = shop / "seeds" / "country_codes.csv"
    seed.write_text(seed.read_text(encoding="utf-8") + "ZZ,Nowhere,Nowhere\n", encoding="utf-8")
    changed = compile_project(shop).plan
    assert (
        changed["nodes"]["seed.country_codes"]["snapshot"]
        != (plan["nodes"]["seed.country_codes"]["snapshot"])
    )
    assert canonical_json(changed) == plan_text(shop, use_cache=False)


def _embed_flag(project: Path) -> None:
    with (project / "seeknal_project.yml").open("a", encoding="utf-8") as fh:
        fh.write("embed_env_vars: [SEEKNAL_TEST_FLAG]\n")


def test_env_var_templates_are_rendered_every_time(
    minimal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _embed_flag(minimal)
    write_node(
        minimal,
        "flagged",
        'SELECT \'{{ env_var("SEEKNAL_TEST_FLAG", "none") }}\' AS flag FROM source.orders',
    )
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "one")
    first = compile_project(minimal).plan
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "two")
    second = compile_project(minimal).plan
    assert "'two'" in second["nodes"]["transform.flagged"]["sql"]["engine"]
    assert (
        first["nodes"]["transform.flagged"]["snapshot"]
        != (second["nodes"]["transform.flagged"]["snapshot"])
    )
    assert canonical_json(second) == plan_text(minimal, use_cache=False)


def test_macros_calling_env_var_turn_rendering_caching_off(
    minimal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _embed_flag(minimal)
    (minimal / "macros").mkdir()
    (minimal / "macros" / "flag.sql").write_text(
        "{% macro flag() %}'{{ env_var('SEEKNAL_TEST_FLAG', 'none') }}'{% endmacro %}\n",
        encoding="utf-8",
    )
    write_node(minimal, "flagged", "SELECT {{ flag() }} AS flag FROM source.orders")
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "one")
    compile_project(minimal)
    monkeypatch.setenv("SEEKNAL_TEST_FLAG", "two")
    second = compile_project(minimal).plan
    assert "'two'" in second["nodes"]["transform.flagged"]["sql"]["engine"]


def test_a_broken_macro_is_reported_even_when_nodes_are_cached(minimal: Path) -> None:
    (minimal / "macros").mkdir()
    macro = minimal / "macros" / "m.sql"
    macro.write_text("{% macro m() %}1{% endmacro %}\n", encoding="utf-8")
    plan_text(minimal)
    macro.write_text("{% macro m() %}1{% endmacro\n", encoding="utf-8")
    assert error_text(minimal) == error_text(minimal, use_cache=False)


def test_a_warm_compile_imports_neither_sqlglot_nor_duckdb_nor_jinja(
    shop: Path, _compile_cache: Path
) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from seeknal.compiler import compile_project\n"
        "compile_project(Path(sys.argv[1]))\n"
        "print(sorted(m for m in ('sqlglot', 'duckdb', 'jinja2', 'jsonschema') if m in sys.modules))\n"
    )
    env = {**os.environ, "SEEKNAL_CACHE_DIR": str(_compile_cache)}
    run = [sys.executable, "-c", code, str(shop)]
    cold = subprocess.run(run, capture_output=True, text=True, check=True, env=env)
    assert "sqlglot" in cold.stdout
    warm = subprocess.run(run, capture_output=True, text=True, check=True, env=env)
    assert warm.stdout.strip() == "[]"


@pytest.mark.parametrize("home", ["raises", "unexpanded"])
def test_without_a_home_directory_the_caches_are_off(
    shop: Path, monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    """A container user with no home: Python raises (3.12) or leaves ``~`` as it is
    (3.11). Nothing is cached then, neither somewhere relative nor shared, and runs work."""
    from seeknal.cachedir import usable_cache_directory
    from seeknal.engines import duckdb_catalog

    monkeypatch.delenv("SEEKNAL_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        if home == "raises":
            raise RuntimeError("Could not determine home directory.")
        return Path("~")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert usable_cache_directory() is None
    assert not CompileCache.open(shop).enabled
    assert duckdb_catalog.memory_file(str(shop / "target/warehouse.duckdb")) is None
    monkeypatch.chdir(shop)
    assert invoke(shop, "run", "--quiet").exit_code == 0
    assert not (shop / "~").exists()
