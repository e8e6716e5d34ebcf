"""Helpers for strategies over denoising steps: advance nodes a number of steps, one batched step at a time."""
from __future__ import annotations

from typing import Iterator

from strategies.common import add_nodes, check
from strategies.core import CancelToken, Event, Node, SearchSpace


def advance(space: SearchSpace, nodes: list[Node], to_depth: int, cancel: CancelToken | None,
            tree: dict[str, Node] | None = None) -> Iterator[Event]:
    """Step every unfinished node below ``to_depth`` until it gets there (one batched ``extend`` per step).

    Every intermediate state becomes a node (so the x_t | x0-hat strips have all steps, and a revision can
    restart from any step of a chain: ``tree``, when given, maps the id of every node made to the node);
    returns the nodes at ``to_depth`` (or finished earlier), in the order given.
    """
    nodes = list(nodes)
    while True:
        idx = [i for i, n in enumerate(nodes) if n.depth < to_depth and not n.finished]
        if not idx:
            return nodes
        check(cancel)
        grown = space.extend([nodes[i] for i in idx], 1)
        for i, group in zip(idx, grown):
            nodes[i] = group[0]
            if tree is not None:
                tree[group[0].id] = group[0]
        yield from add_nodes([g[0] for g in grown])
