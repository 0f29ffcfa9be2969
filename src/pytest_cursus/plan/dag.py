"""The step graph of a scenario: edges from `<step>.<output>` references, in a stable order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Edge:
    """Output ``upstream.output`` of one step feeds input ``downstream.input`` of another."""

    upstream: str
    output: str
    downstream: str
    input: str

    @property
    def id(self) -> str:
        return f"{self.upstream}.{self.output}-{self.downstream}.{self.input}"


class CycleError(ValueError):
    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(" -> ".join(self.cycle))


def topological_order(declared: Sequence[str], upstreams: Mapping[str, set[str]]) -> list[str]:
    """Kahn's algorithm; ties keep declaration order, so every xdist worker gets the same order."""
    position = {name: index for index, name in enumerate(declared)}
    waiting = {name: set(upstreams.get(name, ())) for name in declared}
    order: list[str] = []
    ready = sorted((name for name, ups in waiting.items() if not ups), key=position.__getitem__)
    while ready:
        current = ready.pop(0)
        order.append(current)
        released = []
        for name, ups in waiting.items():
            if current in ups:
                ups.discard(current)
                if not ups:
                    released.append(name)
        ready = sorted([*ready, *released], key=position.__getitem__)
    if len(order) != len(declared):
        raise CycleError(find_cycle({n: ups for n, ups in waiting.items() if ups}))
    return order


def find_cycle(upstreams: Mapping[str, set[str]]) -> list[str]:
    """One cycle among the given nodes, as a path that ends where it starts."""
    for start in sorted(upstreams):
        path = [start]
        seen = {start}
        node = start
        while True:
            following = sorted(upstreams.get(node, ()))
            if not following:
                break
            node = following[0]
            if node in seen:
                return [*path[path.index(node) :], node]
            path.append(node)
            seen.add(node)
    return sorted(upstreams)


def ancestors(step: str, upstreams: Mapping[str, set[str]]) -> set[str]:
    """Every step that must run before ``step``."""
    found: set[str] = set()
    pending = list(upstreams.get(step, ()))
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(upstreams.get(name, ()))
    return found
