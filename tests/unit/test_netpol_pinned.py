"""The NETPOL cases' tables, pinned by hand beside them (conformance/test_netpol.py), against our evaluator.

Either may be wrong: a difference is a cell to reason out from NetworkPolicy semantics, never
one to copy from the evaluator into the table.
"""

import pytest

from pytest_k8ssec import reachability
from pytest_k8ssec.conformance import test_netpol as cases
from pytest_k8ssec.netpol.expected import expected_table
from pytest_k8ssec.netpol.truthtable import diff, wrong_cells

RUN = {"k8ssec.io/run": "r1"}
REAL = {ns.key: f"k8ssec-r1-np-{ns.key}" for ns in cases.LAB.namespaces}
STEPS = [value for value in vars(cases).values() if isinstance(value, cases.Step)]
NODES = {"one node": None, "two nodes": ["node-a", "node-b"]}


def evaluated(step, nodes):
    """The evaluator's table for the step, over the lab as the netlab fixture binds it."""
    model = cases.LAB.bind(REAL)
    if nodes:
        model = reachability.pods_by_node(model, nodes)
    for key, labels in step.labelled.items():
        model = model.relabel(key, labels)
    policies = step.policies(model.real_name, RUN)
    return expected_table(model, [p for p in policies if p["kind"] == "NetworkPolicy"],
                          [p for p in policies if p["kind"] != "NetworkPolicy"])


def test_every_case_has_its_step():
    assert {step.name for step in STEPS} == {
        "no policy", "default deny", "pod selector with default deny", "pod selector, default deny deleted",
        "namespace selector, before labelling", "namespace selector, after labelling", "egress", "named port",
        "admin deny", "admin pass", "baseline deny"}


@pytest.mark.parametrize("nodes", NODES.values(), ids=NODES.keys())
@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_evaluator_reproduces_the_pinned_table(step, nodes):
    computed = evaluated(step, nodes)
    missing = sorted(f"{s} -> {d} port {p}" for s, d, p in set(computed.cells) - set(step.table.cells))
    extra = sorted(f"{s} -> {d} port {p}" for s, d, p in set(step.table.cells) - set(computed.cells))
    assert not missing and not extra, f"pinned table of {step.name!r}: cells missing {missing}, cells extra {extra}"
    wrong = wrong_cells(step.table, computed)
    assert not wrong, (f"{step.name!r}: the evaluator (observed) differs from the table pinned by hand (expected)\n"
                       + "\n".join(map(str, wrong)) + "\n\n" + diff(step.table, computed))


def test_pinned_tables_name_the_models_sources_and_targets():
    """Same axes as the evaluator's table, so the report's grids read the same way as before."""
    computed = expected_table(cases.LAB.bind(REAL), [])
    for step in STEPS:
        assert (step.table.sources, step.table.destinations, step.table.ports) == (
            computed.sources, computed.destinations, computed.ports), step.name
