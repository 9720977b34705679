"""Reachability truth tables: (source, destination, port) -> outcome, their printing and their diff.

Printed one table per port, rows = sources, columns = destinations, by short names such as
`tenant/access`, so a mismatch reads at a glance like the upstream e2e tests' tables.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .model import Port

LEGEND = "'.' allowed, 'X' blocked, '?' error"


class Outcome(Enum):
    """ERROR means the probe could not tell (crash, no answer line, unexpected status): never BLOCKED."""

    ALLOWED = "."
    BLOCKED = "X"
    ERROR = "?"


Key = tuple[str, str, Port]


@dataclass
class TruthTable:
    """Outcomes by (source, destination, port); cells never set (e.g. a pod to itself) are not probed."""

    sources: list[str]
    destinations: list[str]
    ports: list[Port]
    cells: dict[Key, Outcome] = field(default_factory=dict)

    def empty_like(self) -> TruthTable:
        """A table with the same axes and no cells, to fill with observations."""
        return TruthTable(list(self.sources), list(self.destinations), list(self.ports))

    def set(self, source: str, destination: str, port: Port, outcome: Outcome) -> None:
        if source not in self.sources or destination not in self.destinations or port not in self.ports:
            raise KeyError(f"cell {source} -> {destination} {port} is outside this table's axes")
        self.cells[(source, destination, port)] = outcome

    def get(self, source: str, destination: str, port: Port) -> Outcome | None:
        return self.cells.get((source, destination, port))

    def keys(self) -> list[Key]:
        """Set cells in printing order: port, then source, then destination."""
        every = ((s, d, p) for p in self.ports for s in self.sources for d in self.destinations)
        return [key for key in every if key in self.cells]

    def document(self) -> dict[str, str]:
        """Every set cell as "source -> destination port P": outcome, for the report's evidence."""
        return {f"{s} -> {d} port {p}": self.cells[(s, d, p)].name for s, d, p in self.keys()}

    def render(self) -> str:
        """One table per port: '.' allowed, 'X' blocked, '?' error, blank where not probed."""
        return "\n\n".join(
            _render_port(self, port, f"port {port}: {LEGEND}, ' ' not probed",
                         lambda s, d: cell.value if (cell := self.get(s, d, port)) else " ")
            for port in self.ports)


GRID_LETTERS = {"A": Outcome.ALLOWED, "X": Outcome.BLOCKED}


def from_grid(text: str, ports: Sequence[Port]) -> TruthTable:
    """A table written by hand, so expectations are read off the page rather than computed.

    Rows are sources; columns are targets, grouped by `|` under two header lines: each group's
    namespace, then its targets' names. A cell has one letter per port, in `ports` order ('A'
    allowed, 'X' blocked), or '-' for no cell (a pod to itself). A row whose groups do not line up
    with the header is an error, so the table cannot mean other than it looks.
    """
    lines = [line for line in textwrap.dedent(text).splitlines() if line.strip()]
    split = [[group.split() for group in line.split("|")] for line in lines]
    if len(split) < 3 or split[0][0] or split[1][0] or len(split[0]) != len(split[1]) \
            or any(len(ns) != 1 for ns in split[0][1:]):
        raise ValueError("a grid needs a header line of namespaces and one of targets, both grouped by '|' after an "
                         "empty first column, then one row per source")
    columns = [[f"{ns[0]}/{name}" for name in names] for ns, names in zip(split[0][1:], split[1][1:])]
    table = TruthTable([row[0][0] if row[0] else "" for row in split[2:]], [d for group in columns for d in group],
                       list(ports))
    for line, row in zip(lines[2:], split[2:]):
        if len(row[0]) != 1 or [len(g) for g in row[1:]] != [len(g) for g in columns]:
            raise ValueError(f"grid row {line.strip()!r}: expected a source, then {[len(g) for g in columns]} cells per group")
        for destination, cell in zip(table.destinations, (c for group in row[1:] for c in group)):
            if cell == "-":
                continue
            if len(cell) != len(ports) or set(cell) - set(GRID_LETTERS):
                raise ValueError(f"grid row {row[0][0]}, column {destination}: {cell!r} is not '-' or "
                                 f"{len(ports)} of A/X (ports {', '.join(str(p.number) for p in ports)})")
            for port, letter in zip(ports, cell):
                table.set(row[0][0], destination, port, GRID_LETTERS[letter])
    return table


@dataclass(frozen=True)
class Mismatch:
    source: str
    destination: str
    port: Port
    expected: Outcome
    observed: Outcome

    def __str__(self) -> str:
        return (f"{self.source} -> {self.destination} port {self.port}: "
                f"expected {self.expected.name}, observed {self.observed.name}")


def wrong_cells(expected: TruthTable, observed: TruthTable) -> list[Mismatch]:
    """Every expected cell the observation contradicts; an expected cell never observed counts as ERROR."""
    out = []
    for key in expected.keys():
        want, got = expected.cells[key], observed.cells.get(key, Outcome.ERROR)
        if want is not got:
            out.append(Mismatch(*key, want, got))
    return out


def diff(expected: TruthTable, observed: TruthTable) -> str:
    """Expected vs observed per port: '-' where they agree, else the OBSERVED symbol; blank = not expected."""
    wrong = {(m.source, m.destination, m.port): m.observed for m in wrong_cells(expected, observed)}
    header = f"expected vs observed: {len(wrong)} of {len(expected.cells)} cells wrong"
    tables = []
    for port in expected.ports:
        def symbol(s: str, d: str, port: Port = port) -> str:
            if (s, d, port) in wrong:
                return wrong[(s, d, port)].value
            return "-" if (s, d, port) in expected.cells else " "
        tables.append(_render_port(expected, port,
                                   f"port {port}: '-' as expected, else the OBSERVED outcome: {LEGEND}", symbol))
    return "\n\n".join([header, *tables])


def _render_port(table: TruthTable, port: Port, title: str, symbol: Callable[[str, str], str]) -> str:
    """Rows are the sources and columns the destinations that have a cell on this port."""
    rows = [s for s in table.sources if any((s, d, port) in table.cells for d in table.destinations)]
    cols = [d for d in table.destinations if any((s, d, port) in table.cells for s in table.sources)]
    first = max((len(s) for s in rows), default=0)
    lines = [title, "  ".join([" " * first, *cols]).rstrip()]
    for s in rows:
        cells = [symbol(s, d).ljust(len(d)) for d in cols]
        lines.append("  ".join([s.ljust(first), *cells]).rstrip())
    return "\n".join(lines)
