"""The Jinja sandbox every template renders in: no Python internals, no files, bounded work.

``seeknal compile`` runs on pull requests, often from people the team does not know, so a
template is untrusted code. Jinja's ``ImmutableSandboxedEnvironment`` already refuses
``_``-prefixed attributes and methods that mutate; this module makes it stricter:

- **no files**: there is no template loader, and ``{% include %}``, ``{% import %}``,
  ``{% from %}`` and ``{% extends %}`` are refused before anything renders (macros come
  only from ``macros/*.sql``, already loaded, and are available by name);
- **a small surface**: the globals are seeknal's own plus a bounded ``range`` and
  ``dict`` (no ``lipsum``, ``cycler``, ``joiner``, ``namespace``, no ``self``); only
  deterministic filters that cannot blow up are kept; a plain value (str, list, dict,
  number) exposes only a short list of read-only methods (``upper``, ``split``,
  ``items``, ...);
- **bounded work**: no value a template builds, and no rendered text, may exceed
  ``MAX_SIZE`` characters; at most ``MAX_ITERATIONS`` loop iterations per render; and a
  work budget (every call, filter and operator is charged for the size of what it
  touches), so ``{{ 'x' * 10**10 }}``, nested ``range`` loops and doubling macros stop
  with an error instead of eating the CI machine.

Every refusal raises :class:`TemplateRefused` (a file-free policy violation, with its
line) or :class:`TemplateLimitError` / ``SecurityError`` while rendering; ``render.py``
turns each into a ``template error`` at the node's line.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_SIZE = 1_000_000  # characters of any value a template builds, and of its output
MAX_ITERATIONS = 100_000  # loop iterations per render
MAX_WORK = 20_000_000  # characters touched by calls, filters and operators, per render
MAX_INT_BITS = 4096  # integers a template computes (10**1000 fits; 10**10**10 does not)

# Read-only methods a plain value exposes; everything else on these types is refused
# (``format`` and ``ljust`` pad without bound, ``copy``/``append`` are pointless here).
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum",
        "isalpha", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isspace", "istitle", "isupper", "join", "lower", "lstrip", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "upper",
    }
)  # fmt: skip
_SAFE_ATTRIBUTES: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    range: frozenset({"count", "index", "start", "step", "stop"}),
    int: frozenset({"real", "imag", "numerator", "denominator"}),
    float: frozenset({"real", "imag", "is_integer"}),
    bool: frozenset(),
    set: frozenset(),
    frozenset: frozenset(),
    bytes: frozenset(),
}
# Deterministic filters whose output is bounded by their input. Left out: random
# (a plan must be reproducible), format/center/indent/wordwrap/batch/slice (pad or fill
# to any size), and the HTML ones (escape, urlize, xmlattr, striptags, ...).
_FILTERS = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "first",
        "float", "groupby", "int", "items", "join", "last", "length", "list", "lower",
        "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
        "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
        "truncate", "unique", "upper", "wordcount",
    }
)  # fmt: skip
# Statements that would read another template (a file, once there is a loader).
_FILE_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
}
# `%` formatting with a huge width or precision pads without bound: '%999999999s' % x.
_WIDE_FORMAT = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(?:\*|\d{4,}|\d*\.(?:\*|\d{4,}))")
SIZE_HINT = (
    f"a template may build at most {MAX_SIZE:,} characters and run at most "
    f"{MAX_ITERATIONS:,} loop iterations"
)
SANDBOX_HINT = (
    "templates run in a sandbox: ref(), var(), env_var(), the macros in macros/ and "
    "plain values are available; Python internals and files are not"
)


class TemplateRefused(Exception):
    """A template uses a construct the sandbox never allows; ``line`` is where."""

    def __init__(self, message: str, line: int, hint: str = SANDBOX_HINT) -> None:
        super().__init__(message)
        self.line = line
        self.hint = hint


class TemplateLimitError(Exception):
    """Rendering went over one of the sandbox's limits."""


@dataclass(slots=True)
class _Budget:
    """Work done by one render; a fresh one for each node and each macro file."""

    work: int = 0
    iterations: int = 0
    # Containers measured in this render (id -> the container, its size): measuring the
    # same list in every iteration of a loop must not cost its length each time.
    sizes: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_WORK:
            raise TemplateLimitError(
                f"the template does too much work (more than {MAX_WORK:,} characters "
                "handled by calls, filters and operators)"
            )

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimitError(f"more than {MAX_ITERATIONS:,} loop iterations")


_BUDGET: ContextVar[_Budget | None] = ContextVar("seeknal_template_budget", default=None)


@contextlib.contextmanager
def render_budget() -> Iterator[None]:
    """A fresh work budget for everything rendered inside the block."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget() -> _Budget:
    # Outside render_budget() (never in the compiler) each operation gets its own: the
    # size limits still hold.
    return _BUDGET.get() or _Budget()


def measure(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters ``str(value)`` has; stops counting once over ``limit``.

    Containers are walked without being converted, so measuring a structure that shares
    one big list many times costs at most ``limit`` steps, not its expanded size.

    Example:
        >>> measure("abc"), measure(["ab", "cd"]) > 4
        (3, True)
    """
    total = 0
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        item = next(stack[-1], _DONE)
        if item is _DONE:
            stack.pop()
            continue
        if isinstance(item, str | bytes):
            total += len(item)
        elif item is None or isinstance(item, bool):
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.append(iter(item.items()))
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.append(iter(item))
        elif isinstance(item, range):
            total += 24
        else:
            total += 16  # a macro, a loop, an undefined value: printed as a short name
        if total > limit:
            return total
    return total


_DONE = object()


def _check(value: Any, budget: _Budget) -> None:
    """Charge ``value``'s size to the budget; refuse it when it is too large."""
    if isinstance(value, list | tuple | dict):
        known = budget.sizes.get(id(value))
        if known is not None and known[0] is value:
            size = known[1]
        else:
            size = measure(value)
            budget.sizes[id(value)] = (value, size)
    else:
        size = measure(value)
    budget.spend(size)
    if size > MAX_SIZE:
        raise TemplateLimitError(
            f"the template builds a value of more than {MAX_SIZE:,} characters"
        )


def _refuse_size(predicted: int) -> None:
    if predicted > MAX_SIZE:
        raise TemplateLimitError(
            f"the template builds a value of more than {MAX_SIZE:,} characters"
        )


def _predicted_replace(text: str, old: str, new: str, count: int = -1) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _listed(items: Any) -> Any:
    """A generator (``map``, ``select``) as a list, so that a join can be measured first."""
    return items if isinstance(items, str | list | tuple | dict) else list(items)


def _predicted_join(separator: str, items: Any) -> int:
    sized = [measure(item) for item in items]
    return sum(sized) + len(separator) * max(len(sized) - 1, 0)


def loop_items(iterable: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates over: the same items, counted."""
    budget = _budget()
    for item in iterable:
        budget.iterate()
        yield item


def join_strings(*parts: Any) -> str:
    """The ``~`` operator (Jinja's own concatenation, after the call was size-checked)."""
    return "".join(map(str, parts))


def bounded_range(*args: Any) -> range:
    """``range()`` for templates: at most ``MAX_ITERATIONS`` numbers."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_ITERATIONS + 1
    if size > MAX_ITERATIONS:
        raise TemplateLimitError(f"range() of more than {MAX_ITERATIONS:,} numbers")
    return numbers


class SeeknalSandbox(ImmutableSandboxedEnvironment):
    """The environment of every template: see the module docstring for what it refuses."""

    # Intercepted operators are also never folded at compile time, where a bomb would
    # go off before any check.
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self.globals.clear()
        self.globals.update({"range": bounded_range, "dict": dict})
        self.filters = {
            name: _bounded_filter(name, fn) for name, fn in self.filters.items() if name in _FILTERS
        }

    def concat(self, pieces: Iterable[str]) -> str:
        """Join a template's (or a macro's) output, refusing it past ``MAX_SIZE``."""
        total = 0
        kept = []
        for piece in pieces:
            total += len(piece)
            _refuse_size(total)
            kept.append(piece)
        return "".join(kept)

    def wrap_str_format(self, value: Any) -> None:
        """``str.format`` is not a method templates get (its padding has no bound)."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        for kind in type(obj).__mro__:
            if kind in _SAFE_ATTRIBUTES:
                return attr in _SAFE_ATTRIBUTES[kind]
        return True

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.spend(1)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | list | tuple | dict):
            budget.spend(measure(owner))  # a method works through its whole value
            name = getattr(__obj, "__name__", "")
            if isinstance(owner, str) and name == "replace" and len(args) >= 2:
                count = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
                _refuse_size(_predicted_replace(owner, str(args[0]), str(args[1]), count))
            elif isinstance(owner, str) and name == "join" and args:
                args = (_listed(args[0]), *args[1:])
                _refuse_size(_predicted_join(owner, args[0]))
        for value in (*args, *kwargs.values()):
            _check(value, budget)
        result = super().call(__context, __obj, *args, **kwargs)
        _check(result, budget)
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.spend(1)
        _check(left, budget)
        _check(right, budget)
        _predict_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        _check(result, budget)
        return result


def _predict_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before computing it."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                _refuse_size(measure(seq) * max(times, 0))
        if isinstance(left, int) and isinstance(right, int):
            _refuse_bits(left.bit_length() + right.bit_length())
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        _refuse_bits(max(left.bit_length(), 1) * right)
    elif operator == "+" and isinstance(left, str | list | tuple):
        _refuse_size(measure(left) + measure(right))
    elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
        raise TemplateLimitError("% formatting with a width or precision of 1000 or more")


def _refuse_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"the template computes an integer of more than {MAX_INT_BITS} bits"
        )


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` a template prints, measured before it becomes text."""
    _check(value, _budget())
    return value


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` charged for its arguments and result, refused past the size limit."""

    @functools.wraps(fn)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.spend(1)
        for value in (*args, *kwargs.values()):
            _check(value, budget)
        if name == "replace" and len(args) >= 4:  # (eval_ctx, value, old, new[, count])
            count = args[4] if len(args) > 4 and isinstance(args[4], int) else -1
            _refuse_size(_predicted_replace(str(args[1]), str(args[2]), str(args[3]), count))
        elif name == "join" and len(args) >= 2:  # (eval_ctx, value[, d, attribute])
            args = (args[0], _listed(args[1]), *args[2:])
            separator = args[2] if len(args) > 2 else kwargs.get("d", "")
            _refuse_size(_predicted_join(str(separator), args[1]))
        elif name == "sum":  # (environment, iterable[, attribute, start])
            start = args[3] if len(args) > 3 else kwargs.get("start", 0)
            if not isinstance(start, int | float):
                raise TemplateLimitError("sum() adds numbers; start must be a number")
        result = fn(*args, **kwargs)
        _check(result, budget)
        return result

    return bounded


class _Policy(NodeTransformer):
    """Refuse file statements, ``self`` and recursive loops; count every loop's items."""

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.name == "self" and node.ctx == "load":
            raise TemplateRefused("template error: 'self' is not available", node.lineno)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateRefused(
                "template error: recursive loops are not allowed",
                node.lineno,
                hint="write the levels out, or move the logic into SQL",
            )
        self.generic_visit(node)
        node.iter = _call(f"{__name__}.loop_items", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call(f"{__name__}.join_strings", list(node.nodes), node.lineno)

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        statement = _FILE_STATEMENTS.get(type(node))
        if statement is not None:
            raise TemplateRefused(
                f"template error: {statement} is not allowed: templates cannot read files",
                node.lineno,
                hint="the macros in macros/*.sql are available in every node by name",
            )
        return super().generic_visit(node, *args, **kwargs)


def _call(function: str, args: list[Any], lineno: int) -> nodes.Call:
    call = nodes.Call(nodes.ImportedName(function), args, [], None, None)
    call.set_lineno(lineno)
    return call


def compile_template(
    env: SeeknalSandbox, text: str, filename: str, name: str | None = None
) -> jinja2.Template:
    """Parse ``text``, apply the sandbox policy, and compile it (no loader involved).

    ``filename`` names the template's frames in a traceback: the node's SQL is
    ``<template>``, a macro file its path, so an error can tell them apart.

    Raises:
        jinja2.TemplateSyntaxError: the text is not a valid template.
        TemplateRefused: it uses a construct the sandbox never allows.

    Example:
        >>> env = SeeknalSandbox()
        >>> compile_template(env, "{{ 1 + 2 }}", "<template>").render()
        '3'
    """
    tree = env.parse(text, name=name, filename=filename)
    tree = _Policy().visit(tree)
    code = env.compile(tree, name=name, filename=filename)
    return env.template_class.from_code(env, code, env.make_globals(None))
