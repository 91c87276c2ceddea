"""The delegation graph of a team: who may delegate to whom. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def unknown_subordinates(edges: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(agent, subordinate) pairs whose subordinate is not an agent of the team."""
    return [(a, s) for a, subs in edges.items() for s in subs if s not in edges]


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One delegation cycle as a path that returns to its start, or None for a DAG."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                colour[node] = grey
                path.append(node)
            subs = [s for s in edges.get(node, ()) if s in edges]
            if index < len(subs):
                stack.append((node, index + 1))
                nxt = subs[index]
                if colour[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour[nxt] == white:
                    stack.append((nxt, 0))
            else:
                colour[node] = black
                path.pop()
    return None


def depth(edges: Mapping[str, Sequence[str]]) -> tuple[int, list[str]]:
    """Length (in delegations) of the longest chain in a DAG, and that chain."""
    memo: dict[str, list[str]] = {}

    def longest(node: str) -> list[str]:
        if node not in memo:
            best: list[str] = []
            for sub in edges.get(node, ()):
                if sub in edges:
                    candidate = longest(sub)
                    if len(candidate) > len(best):
                        best = candidate
            memo[node] = [node, *best]
        return memo[node]

    chain = max((longest(n) for n in edges), key=len, default=[])
    return max(len(chain) - 1, 0), chain
