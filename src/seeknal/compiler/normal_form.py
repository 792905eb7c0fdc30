"""The normal forms in which ``categorize_change`` compares two versions of a query.

Only steps that preserve meaning are used (see docs/architecture.md): parse and
generate, identifier normalization, qualification with sqlglot's ``qualify`` (columns
qualified, stars expanded when the schema is known), parentheses dropped where they
cannot matter, comments dropped. sqlglot's simplifier never runs: two different queries
that it rewrote into one text would be called a mere reformatting.

Both versions get the same treatment, the most precise one that works for both:

1. with a schema: qualify as the compiler does (columns checked, alias references
   expanded into the expressions they name);
2. qualify without checking columns and without expanding aliases (no schema, or one
   that lacks a table): a column sqlglot cannot place stays as written, an alias
   stays an alias, and the comparison treats both conservatively;
3. identifiers normalized, nothing else.

One guard: ``qualify`` rewrites ``JOIN ... USING`` (and ``NATURAL JOIN``) into ``ON``,
which is right only once every star is expanded, because ``SELECT *`` shows a USING
column once and an ON column twice. A form that keeps a star over such a join is
refused, and the next treatment is tried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, Dialects, NormalizationStrategy
from sqlglot.errors import SchemaError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from seeknal.compiler.change import QueryError
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.model import SqlText
from seeknal.compiler.query_shape import dynamic, projections
from seeknal.compiler.sql import strip_redundant_parens
from seeknal.compiler.sql_errors import NotOneQuery, parse_one_query
from seeknal.errors import Diagnostic, excerpt_at

# Keys of sqlglot's node metadata that carry an output column's name through qualify.
_NAME = "seeknal_output_name"
_ENGINE_NAMED = "seeknal_engine_named"


@dataclass(frozen=True, slots=True)
class NormalForm:
    """A query in normal form, with the names of its output columns.

    ``keys`` are the names as normalized (what the comparison pairs); ``names`` are the
    same columns as the engine spells them: DuckDB keeps an alias's case, and names an
    unaliased expression after its text (``engine_named`` lists those keys). A star or
    ``COLUMNS(...)`` left unexpanded is one key for all its columns (``dynamic``).
    """

    tree: exp.Query
    text: str
    keys: tuple[str, ...]
    names: tuple[str, ...]
    engine_named: frozenset[str]
    dynamic: frozenset[str]


def read_query(sql: str, side: str, dialect: str) -> exp.Query:
    """Parse one query; ``side`` (``old`` or ``new``) names it in errors.

    Raises:
        QueryError: an unknown dialect, a syntax error, or not exactly one query.
    """
    origin = SqlText(sql, f"{side} SQL")
    try:
        Dialect.get_or_raise(dialect)
    except ValueError:
        known = [d.value for d in Dialects if d.value]
        raise QueryError(
            Diagnostic(
                f"unknown SQL dialect '{dialect}'",
                hint=did_you_mean(dialect, known) or "e.g. duckdb, postgres, snowflake",
            )
        ) from None
    try:
        return parse_one_query(sql, dialect, origin)
    except NotOneQuery as exc:
        if exc.diagnostic is not None:
            raise QueryError(_with_excerpt(exc.diagnostic, sql)) from None
        raise QueryError(
            Diagnostic(
                f"expected one query (SELECT, set operation), found {exc.found}",
                origin.locate(1, 1),
                hint="compare the query alone, without a trailing statement or DDL",
            )
        ) from None


def _with_excerpt(diagnostic: Diagnostic, sql: str) -> Diagnostic:
    where = diagnostic.location
    if where is None:
        return diagnostic
    return dataclasses.replace(diagnostic, excerpt=excerpt_at(sql, where.line, where.col))


def normal_forms(
    old: exp.Query, new: exp.Query, dialect: str, schema: Mapping[str, Any] | None
) -> tuple[NormalForm, NormalForm]:
    """Both versions in the most precise normal form that works for both.

    Raises:
        QueryError: ``schema`` is not a schema sqlglot can read.
    """
    mapping = _mapping_schema(schema, dialect)
    spellings = _spellings(schema or {})
    for tree in (old, new):
        _mark_output_names(tree, dialect, spellings)
    pair: tuple[exp.Query, exp.Query] | None = None
    for strict in (True, False):
        if strict and mapping is None:
            continue
        before = _qualified(old, dialect, mapping, strict=strict)
        after = _qualified(new, dialect, mapping, strict=strict)
        if before is not None and after is not None:
            pair = (before, after)
            break
    if pair is None:
        pair = (
            normalize_identifiers(old.copy(), dialect=dialect),
            normalize_identifiers(new.copy(), dialect=dialect),
        )
    return (
        _form(pair[0], dialect, spellings),
        _form(pair[1], dialect, spellings),
    )


def _mapping_schema(schema: Mapping[str, Any] | None, dialect: str) -> MappingSchema | None:
    if not schema:
        return None
    try:
        return MappingSchema(dict(schema), dialect=dialect)
    except SchemaError as exc:
        raise QueryError(
            Diagnostic(
                f"invalid schema: {exc}",
                hint='give {"db": {"table": {"column": "TYPE"}}} for every table read',
            )
        ) from None


def _qualified(
    tree: exp.Query, dialect: str, schema: MappingSchema | None, *, strict: bool
) -> exp.Query | None:
    try:
        out = qualify(
            tree.copy(),
            dialect=dialect,
            schema=schema,
            expand_alias_refs=strict,
            validate_qualify_columns=strict,
            quote_identifiers=True,
            identify=True,
        )
    except SqlglotError:
        return None
    if _joins_by_name(tree) and any(
        not isinstance(star.parent, exp.Count) for star in out.find_all(exp.Star)
    ):
        return None
    assert isinstance(out, exp.Query)
    return out


def _joins_by_name(tree: exp.Expr) -> bool:
    return any(
        join.args.get("using") or str(join.args.get("method") or "").upper() == "NATURAL"
        for join in tree.find_all(exp.Join)
    )


def _form(tree: exp.Query, dialect: str, spellings: Mapping[str, str]) -> NormalForm:
    tree = _canonical(strip_redundant_parens(tree))  # type: ignore[assignment]
    # copy=False: the tree is ours, and any rewrite the generator makes for the dialect
    # keeps its meaning (the compiler's normalized text is made the same way).
    text = tree.sql(dialect=dialect, pretty=True, comments=False, identify=True, copy=False)
    keys, names, engine_named, stars = [], [], set(), set()
    select = leftmost_select(tree)
    if select is not None:
        case_insensitive = _case_insensitive(dialect)
        for (key, _), projection in zip(
            projections(select, dialect), select.expressions, strict=True
        ):
            meta = {**projection.unalias().meta, **projection.meta}
            name = meta.get(_NAME)
            if name is None:  # a column a star expanded to
                name = spellings.get(key.lower(), key) if case_insensitive else key
            if meta.get(_ENGINE_NAMED):
                engine_named.add(key)
            if dynamic(projection):
                stars.add(key)
            keys.append(key)
            names.append(str(name))
    return NormalForm(
        tree, text, tuple(keys), tuple(names), frozenset(engine_named), frozenset(stars)
    )


# Operators that bind tighter than NOT, in every dialect seeknal reads.
_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.In,
)


def _canonical(tree: exp.Expr) -> exp.Expr:
    """Spell what the user may spell two ways once: ``INNER JOIN`` is ``JOIN``, ``LEFT
    OUTER JOIN`` is ``LEFT JOIN``, ``ASC`` is the default order, and parentheses that
    restate precedence go (``(a > 1) AND b``, ``NOT (a = b)``).

    A parenthesis is dropped only where the text without it parses back into the same
    grouping (or, for ``a AND (b AND c)``, into one that AND's associativity makes
    equal), so two texts are equal only if their queries are.
    """
    for join in tree.find_all(exp.Join):
        kind = str(join.args.get("kind") or "").upper()
        side = join.args.get("side")
        if (kind == "INNER" and not side) or (kind == "OUTER" and side):
            join.set("kind", None)
    for ordered in tree.find_all(exp.Ordered):
        if ordered.args.get("desc") is False:
            ordered.set("desc", None)
    for paren in list(tree.find_all(exp.Paren)):
        if _restates_precedence(paren):
            paren.replace(paren.this)
    return tree


def _restates_precedence(paren: exp.Paren) -> bool:
    inner, parent = paren.this, paren.parent
    if paren.arg_key not in ("this", "expression") or isinstance(
        inner, exp.Query | exp.Subquery | exp.Lambda
    ):
        return False
    if isinstance(parent, exp.Or):
        return not isinstance(inner, exp.Xor)  # MySQL's XOR: not every dialect has it
    if isinstance(parent, exp.And):
        return not isinstance(inner, exp.Or | exp.Xor)
    if isinstance(parent, exp.Not):
        return isinstance(inner, _COMPARISONS)
    return False


def leftmost_select(tree: exp.Expr) -> exp.Select | None:
    """The SELECT that names a query's output columns (a set operation's first)."""
    while True:
        if isinstance(tree, exp.Select):
            return tree
        if isinstance(tree, exp.SetOperation | exp.Subquery):
            tree = tree.this
        else:
            return None


def _mark_output_names(tree: exp.Query, dialect: str, spellings: Mapping[str, str]) -> None:
    """Record on each output expression the name the engine gives its column."""
    select = leftmost_select(tree)
    if select is None:
        return
    case_insensitive = _case_insensitive(dialect)
    for projection in select.expressions:
        if isinstance(projection, exp.Alias):
            alias = projection.args["alias"]
            # DuckDB names the column as the alias is written, whatever its case.
            name = (
                alias.name
                if case_insensitive
                else normalize_identifiers(alias.copy(), dialect=dialect).name
            )
            projection.meta[_NAME] = name
        elif isinstance(projection, exp.Column) and not isinstance(projection.this, exp.Star):
            # An unaliased column keeps the name its table spells it with.
            name = normalize_identifiers(projection.this.copy(), dialect=dialect).name
            if case_insensitive:
                name = spellings.get(name.lower(), name)
            projection.meta[_NAME] = name
        elif not isinstance(projection, exp.Star) and projection.find(exp.Star) is None:
            projection.meta[_NAME] = projection.sql(dialect=dialect)
            projection.meta[_ENGINE_NAMED] = True


def _case_insensitive(dialect: str) -> bool:
    strategy = Dialect.get_or_raise(dialect).NORMALIZATION_STRATEGY
    return strategy is NormalizationStrategy.CASE_INSENSITIVE


def _spellings(schema: Mapping[str, Any]) -> dict[str, str]:
    """Lowercased column name -> its spelling in the schema, when it has only one."""
    found: dict[str, set[str]] = {}

    def visit(node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                visit(value)
            else:
                found.setdefault(str(key).lower(), set()).add(str(key))

    visit(schema)
    return {lower: next(iter(names)) for lower, names in found.items() if len(names) == 1}
