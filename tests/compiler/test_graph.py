from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from seeknal.compiler.graph import find_cycle, order_nodes


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(min_value=0, max_value=30))
    names = [f"transform.n{i}" for i in range(n)]
    edges: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=5)) if i else []
        edges[name] = deps
    return edges


@given(dags())
def test_order_puts_every_dependency_first(edges: dict[str, list[str]]) -> None:
    order = order_nodes(edges)
    assert sorted(order) == sorted(edges)
    position = {n: i for i, n in enumerate(order)}
    for node, deps in edges.items():
        assert all(position[d] < position[node] for d in deps)
    assert find_cycle(edges) is None


@given(dags())
def test_order_does_not_depend_on_insertion_order(edges: dict[str, list[str]]) -> None:
    reversed_edges = dict(reversed(list(edges.items())))
    assert order_nodes(edges) == order_nodes(reversed_edges)


@given(dags(), st.data())
def test_any_back_edge_is_found_as_a_cycle(
    edges: dict[str, list[str]], data: st.DataObject
) -> None:
    names = sorted(edges)
    if len(names) < 2:
        return
    order = order_nodes(edges)
    low = data.draw(st.integers(0, len(order) - 2))
    high = data.draw(st.integers(low + 1, len(order) - 1))
    # Make the earlier node depend on a later one that (transitively) depends on it, or not.
    edges = {k: list(v) for k, v in edges.items()}
    edges[order[high]].append(order[low])
    edges[order[low]].append(order[high])
    cycle = find_cycle(edges)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    for upstream, downstream in itertools.pairwise(cycle):
        assert upstream in edges[downstream]


def test_a_long_chain_is_no_problem() -> None:
    # Names sort downstream-first, so a recursive walk would go 5000 deep.
    edges = {f"transform.n{i:05d}": [f"transform.n{i + 1:05d}"] for i in range(5000)}
    edges["transform.n05000"] = []
    assert find_cycle(edges) is None
    assert order_nodes(edges)[0] == "transform.n05000"
    edges["transform.n05000"] = ["transform.n00000"]
    cycle = find_cycle(edges)
    assert cycle is not None and len(cycle) == 5002
