"""Truth tables (netpol/truthtable.py): printing, diff, wrong cells."""

import pytest

from pytest_k8ssec.netpol.model import Port
from pytest_k8ssec.netpol.truthtable import TruthTable, diff, from_grid, wrong_cells

from netpol_seed import A, E, X

# --- printing and diff -----------------------------------------------------------------------------

P80 = Port(80, "http")


def tiny(cells):
    table = TruthTable(["t/a", "o/a"], ["t/web", "o/web"], [P80])
    for (s, d), value in cells.items():
        table.set(s, d, P80, value)
    return table


EXPECTED = tiny({("t/a", "t/web"): A, ("t/a", "o/web"): X, ("o/a", "t/web"): X, ("o/a", "o/web"): A})


def test_table_renders_one_block_per_port_with_short_names():
    assert EXPECTED.render() == (
        "port 80/TCP (http): '.' allowed, 'X' blocked, '?' error, ' ' not probed\n"
        "     t/web  o/web\n"
        "t/a  .      X\n"
        "o/a  X      .")


def test_unprobed_cells_render_blank():
    table = tiny({("t/a", "o/web"): E, ("o/a", "t/web"): A})
    assert table.render().splitlines()[1:] == ["     t/web  o/web", "t/a         ?", "o/a  ."]


def test_diff_shows_observed_symbol_where_wrong_and_dash_where_right():
    observed = tiny({("t/a", "t/web"): A, ("t/a", "o/web"): A, ("o/a", "t/web"): E})  # o/a -> o/web missing
    assert diff(EXPECTED, observed) == (
        "expected vs observed: 3 of 4 cells wrong\n"
        "\n"
        "port 80/TCP (http): '-' as expected, else the OBSERVED outcome: '.' allowed, 'X' blocked, '?' error\n"
        "     t/web  o/web\n"
        "t/a  -      .\n"
        "o/a  ?      ?")
    assert [str(m) for m in wrong_cells(EXPECTED, observed)] == [
        "t/a -> o/web port 80/TCP (http): expected BLOCKED, observed ALLOWED",
        "o/a -> t/web port 80/TCP (http): expected BLOCKED, observed ERROR",
        "o/a -> o/web port 80/TCP (http): expected ALLOWED, observed ERROR"]


def test_matching_tables_have_no_wrong_cells():
    assert wrong_cells(EXPECTED, EXPECTED) == []
    assert diff(EXPECTED, EXPECTED).splitlines()[0] == "expected vs observed: 0 of 4 cells wrong"


def test_cells_outside_the_axes_are_refused():
    with pytest.raises(KeyError, match="outside this table's axes"):
        EXPECTED.empty_like().set("t/a", "nowhere", P80, A)


# --- tables written by hand ------------------------------------------------------------------------

P81 = Port(81, "alt")
GRID = """
          | t           | o
          | web  svc:x  | web
    t/a   | AX   XX     | AA
    o/a   | XA   -      | -
    """


def test_grid_reads_one_letter_per_port_and_dash_as_no_cell():
    table = from_grid(GRID, [P80, P81])
    assert (table.sources, table.destinations) == (["t/a", "o/a"], ["t/web", "t/svc:x", "o/web"])
    assert table.cells == {("t/a", "t/web", P80): A, ("t/a", "t/web", P81): X, ("t/a", "t/svc:x", P80): X,
                           ("t/a", "t/svc:x", P81): X, ("t/a", "o/web", P80): A, ("t/a", "o/web", P81): A,
                           ("o/a", "t/web", P80): X, ("o/a", "t/web", P81): A}


@pytest.mark.parametrize("text, message", [
    (GRID.replace("AX   XX     | AA", "AX   | XX   AA"), r"grid row 't/a .*\[2, 1\] cells per group"),
    (GRID.replace("XA", "X"), "grid row o/a, column t/web: 'X' is not '-' or 2 of A/X"),
    (GRID.replace("AA", "A."), "column o/web: 'A.'"),
    ("\n".join(GRID.splitlines()[3:]), "a header line of namespaces"),
], ids=["cell in the wrong group", "one port missing", "not A or X", "no header"])
def test_grid_that_does_not_line_up_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        from_grid(text, [P80, P81])

