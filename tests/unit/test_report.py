"""The Markdown report: the verdict first, one row per case."""

import pytest

from pytest_k8ssec.certification import certify
from pytest_k8ssec.controls import frameworks
from pytest_k8ssec.render import render_markdown
from pytest_k8ssec.report import _controls


def _report(records: list[dict], required: list[str], **kw) -> dict:
    return {"certification": certify(records, required, {}, **kw).document(), "generated": "t", "profile": "p",
            "cluster": {"provider": "local", "version": "v1.37.2", "netpol_enforcer": "kube-router"},
            "summary": {"pass": 1}, "notes": ["removed leftovers"], "cases": records}


def test_markdown_report_lists_each_case():
    record = {"case": "test_x", "behaviour": "RBAC-2", "mechanism": "SAR", "verdict": "pass", "evidence": {"checked": 3}}
    text = render_markdown(_report([record], ["RBAC-2"]))
    assert "| RBAC-2 | `test_x` | SAR | **pass** | checked: 3 |" in text
    assert "- removed leftovers" in text and "local v1.37.2" in text
    assert text.splitlines()[2] == "**Verdict: CERTIFIED**"


@pytest.mark.parametrize("accept, first", [(False, "**Verdict: NOT CERTIFIED**"),
                                           (True, "**Verdict: PARTIAL** (a partial certification, accepted with --k8s-sec-accept-partial)")])
def test_markdown_report_of_a_run_that_saw_too_little_says_so_first(accept, first):
    records = [{"case": "test_x", "behaviour": "RBAC-2", "mechanism": "", "verdict": "pass", "evidence": {}},
               {"case": "test_a", "behaviour": "AUDIT-1", "mechanism": "", "verdict": "skip", "evidence": {}, "reason": "no log"}]
    lines = render_markdown(_report(records, ["RBAC-2", "AUDIT-1"], accept_partial=accept)).splitlines()
    assert lines[2] == first
    assert lines[4] == "- AUDIT-1: not observed: test_a skipped: no log"


def test_markdown_report_names_the_controls_of_each_behaviour():
    record = {"case": "test_x", "behaviour": "NETPOL-2", "mechanism": "", "verdict": "pass", "evidence": {}}
    data = _report([record], ["NETPOL-2"])
    data["controls"] = {"frameworks": frameworks(), "behaviours": {"NETPOL-2": _controls("NETPOL-2")}}
    text = render_markdown(data)
    assert ("| NETPOL-2 | pass | CIS 5.3.1 Ensure that the CNI in use supports NetworkPolicies; "
            "NSA Network separation and hardening: Network policies (partial) |") in text
    assert "CIS: CIS Kubernetes Benchmark v1.10.0" in text
