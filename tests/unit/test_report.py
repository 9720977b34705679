"""The Markdown report: the verdict first, one row per case; the JSON and JUnit with each behaviour's kind of claim."""

import json
from types import SimpleNamespace

import pytest

from pytest_k8ssec.certification import certify
from pytest_k8ssec.controls import frameworks
from pytest_k8ssec.render import render_markdown
from pytest_k8ssec.document import claim_kinds, controls_of
from pytest_k8ssec.recorder import CaseRecord, Recorder
from pytest_k8ssec.report_hooks import ReportHooks
from pytest_k8ssec.runconfig import RunConfig
from pytest_k8ssec.settings import Settings


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


def test_markdown_report_names_the_claim_and_controls_of_each_behaviour():
    records = [{"case": "test_x", "behaviour": "NETPOL-2", "mechanism": "", "verdict": "pass", "evidence": {}},
               {"case": "test_y", "behaviour": "PSP-1", "mechanism": "", "verdict": "pass", "evidence": {}}]
    data = _report(records, ["NETPOL-2", "PSP-1"])
    data["claims"] = claim_kinds(["NETPOL-2", "PSP-1"])
    data["controls"] = {"frameworks": frameworks(), "behaviours": {b: controls_of(b) for b in ("NETPOL-2", "PSP-1")}}
    text = render_markdown(data)
    assert text.splitlines()[2] == "**Verdict: CERTIFIED**"
    assert "| Behaviour | Claim | Status | Controls |" in text
    assert ("| NETPOL-2 | posture | pass | CIS 5.3.1 Ensure that the CNI in use supports NetworkPolicies; "
            "NSA Network separation and hardening: Network policies (partial) |") in text
    assert "| PSP-1 | capability | pass | no control: the suite's own ValidatingAdmissionPolicy gate" in text
    assert "Claim: *posture*: the cluster as configured" in text and "*capability*: shown with the suite's own objects" in text
    assert "CIS: CIS Kubernetes Benchmark v1.10.0" in text


def test_markdown_of_a_report_older_than_claims_keeps_its_controls_table():
    record = {"case": "test_x", "behaviour": "NETPOL-2", "mechanism": "", "verdict": "pass", "evidence": {}}
    data = _report([record], ["NETPOL-2"])
    data["controls"] = {"frameworks": frameworks(), "behaviours": {"NETPOL-2": controls_of("NETPOL-2")}}
    text = render_markdown(data)
    assert "| Behaviour | Status | Controls |" in text and "| NETPOL-2 | pass | CIS 5.3.1 " in text
    assert "Claim" not in text, "a claim the report does not hold is not made up"


def test_the_json_and_junit_say_each_behaviours_kind_of_claim(tmp_path):
    records = [{"case": f"test_{b}", "file": "conformance/x.py", "line": 1, "behaviour": b, "title": "", "mechanism": "",
                "verdict": "pass", "seconds": 0.1, "evidence": {}} for b in ("RBAC-2", "PSP-3")]
    properties = {}
    recorder = Recorder()
    for record in records:
        recorder.record(CaseRecord(**record))
    hooks = ReportHooks(RunConfig(Settings(report_dir=tmp_path), SimpleNamespace(not_applicable={}, name="p"),
                                  frozenset({"RBAC-2", "PSP-3"})), recorder)
    hooks.junit_property = properties.__setitem__
    hooks.pytest_sessionfinish(SimpleNamespace(exitstatus=pytest.ExitCode.OK, testsfailed=0))
    data = json.loads((tmp_path / "k8s-sec-report.json").read_text())
    assert data["claims"]["behaviours"] == {"RBAC-2": "posture", "PSP-3": "capability"}
    assert set(data["claims"]["kinds"]) == {"posture", "capability", "user"}
    assert data["controls"]["behaviours"]["PSP-3"] == {"none": data["controls"]["behaviours"]["PSP-3"]["none"]}, \
        "the suite's own gate credits no control (not CIS 5.2.1)"
    assert properties["k8s-sec.verdict"] == "certified"
    assert properties["k8s-sec.RBAC-2"].startswith("pass; posture claim; controls: NSA ")
    assert properties["k8s-sec.PSP-3"].startswith("pass; capability claim; no control: the suite's own gate ")
    assert (tmp_path / "k8s-sec-report.md").read_text().splitlines()[2] == "**Verdict: CERTIFIED** (for the selected behaviours only: RBAC-2, PSP-3)"
