"""Rendering a stored JSON report: the HTML page's grids, and the same Markdown byte for byte."""

import json
import re

from pytest_k8ssec.certification import certify
from pytest_k8ssec.render import render_case_html, render_html, render_markdown
from pytest_k8ssec.document import claim_kinds as _claims
from pytest_k8ssec.report import main

CELL = "tenant/access -> tenant/nginx-0 port 8080/TCP (http)"
TABLE = {"expected": {CELL: "BLOCKED", "other/access -> tenant/nginx-0 port 8080/TCP (http)": "BLOCKED"},
         "observed": {CELL: "ALLOWED", "other/access -> tenant/nginx-0 port 8080/TCP (http)": "BLOCKED"}}


def _document() -> dict:
    records = [{"case": "test_netpol.py::test_deny", "file": "conformance/test_netpol.py", "line": 83, "behaviour": "NETPOL-2",
                "mechanism": "NetworkPolicy, 1 in force", "verdict": "fail", "failure": "reachability differs <b>",
                "evidence": {"cells": 2, "table": TABLE, "policies": "k8ssec-x-np-tenant/default-deny"}},
               {"case": "test_rbac.py::test_can_i[sar]", "file": "conformance/test_rbac.py", "line": 62, "behaviour": "RBAC-2",
                "mechanism": "SAR", "verdict": "pass",
                "evidence": {"matrix": [{"can-i": "create pods", "expected": "yes", "observed": "yes"}]}}]
    return {"schema": 1, "plugin": "0.1.0", "generated": "2026-11-28T12:00:00+00:00", "profile": "seeds-lab",
            "certification": certify(records, ["RBAC-2", "NETPOL-2"], {}).document(), "notes": [],
            "claims": _claims(["RBAC-2", "NETPOL-2"]),
            "cluster": {"provider": "local", "version": "v1.37.2", "netpol_enforcer": "kube-router", "details": {}},
            "summary": {"fail": 1, "pass": 1}, "cases": records}


def test_the_page_says_the_verdict_first_and_marks_the_cell_that_differs():
    page = render_html(_document())
    assert re.search(r'<h1>.*class="verdict not-certified">NOT CERTIFIED</span></h1>', page)
    assert page.index("NOT CERTIFIED") < page.index("Behaviours")
    observed = page[page.index("<caption>observed, port 8080/TCP (http)</caption>"):]
    title = CELL.replace(">", "&gt;")
    assert f'<td class="allowed diff" title="{title}: ALLOWED (expected BLOCKED)">.</td>' in observed
    assert "Policies in force: k8ssec-x-np-tenant/default-deny" in page
    assert "reachability differs &lt;b&gt;" in page, "failure text is escaped"
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page), "the page fetches nothing"


def test_render_writes_the_same_markdown_again_and_the_html(tmp_path, capsys):
    data = _document()
    (tmp_path / "k8s-sec-report.json").write_text(json.dumps(data))
    assert main(["render", str(tmp_path / "k8s-sec-report.json")]) == 0
    assert (tmp_path / "k8s-sec-report.md").read_bytes() == render_markdown(data).encode()
    assert (tmp_path / "k8s-sec-report.html").read_text().startswith("<!doctype html>")
    assert main(["render", str(tmp_path / "missing.json")]) == 2
    assert "error: cannot read the report" in capsys.readouterr().err


def test_a_page_of_a_run_that_saw_too_little_never_says_certified():
    records = [{"case": "test_a", "file": "conformance/test_audit.py", "line": 1, "behaviour": "AUDIT-1", "mechanism": "",
                "verdict": "skip", "reason": "no audit log", "evidence": {}}]
    for accept, word in ((False, "NOT CERTIFIED"), (True, "PARTIAL")):
        data = {**_document(), "cases": records, "summary": {"skip": 1},
                "certification": certify(records, ["AUDIT-1"], {}, accept_partial=accept).document()}
        head = render_html(data).split("</h1>")[0]
        assert f">{word}</span>" in head and ">CERTIFIED<" not in head
        assert "<title>k8s-sec: " + word in head


def test_a_case_with_a_grid_gives_pytest_html_a_fragment_styled_on_its_own():
    deny, can_i = _document()["cases"]
    fragment = render_case_html(deny)
    assert fragment.startswith('<div class="evidence">') and "<html" not in fragment
    assert 'class="allowed diff"' in fragment and "<caption>expected, port 8080/TCP (http)</caption>" in fragment
    styles = fragment[fragment.index("<style>") + 7:fragment.index("</style>")]
    assert all(rule.strip().startswith(".evidence") for rule in re.split(r"[{}]", styles)[::2] if rule.strip()), \
        "every rule is scoped, so pytest-html's own page keeps its look"
    assert '<tr><td>create pods</td><td>yes</td><td>yes</td></tr>' in render_case_html(can_i)
    assert render_case_html({**deny, "evidence": {"cells": 2}}) == ""


def test_the_page_shows_each_behaviours_kind_of_claim_and_an_older_report_none():
    data = _document()
    data["certification"] = certify([*data["cases"], {**data["cases"][1], "case": "test_gate", "behaviour": "PSP-1"}],
                                    ["RBAC-2", "NETPOL-2", "PSP-1"], {}).document()
    data["claims"] = _claims(["RBAC-2", "NETPOL-2", "PSP-1"])
    page = render_html(data)
    assert re.search(r'<h1>.*class="verdict not-certified">NOT CERTIFIED</span></h1>', page)
    assert "<th>Claim</th>" in page and "<b>capability</b>: shown with the suite&#39;s own objects" in page
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<a href="#([A-Z]+-\d)">.*?<td class="claim-(\w+)">', page, re.S)}
    assert rows == {"RBAC-2": "posture", "NETPOL-2": "posture", "PSP-1": "capability"}
    older = render_html({k: v for k, v in _document().items() if k != "claims"})
    assert "<th>Claim</th>" not in older and "claim-" not in older.split("</style>")[1]


def test_node_endpoints_are_a_table_in_the_page_and_the_markdown_wrong_rows_first():
    ok = {"endpoint": "GET https://10.0.0.2:10250/pods", "from": "pod probe-0 on node-a", "as": "anonymous",
          "expected": "refused (401)", "observed": "401", "verdict": "ok"}
    wrong = {**ok, "endpoint": "GET http://10.0.0.2:10255/pods", "expected": "no answer", "observed": "200", "verdict": "WRONG"}
    document = _document()
    document["cases"].append({"case": "test_node.py::test_kubelet", "file": "conformance/test_node.py", "line": 1,
                              "behaviour": "NODE-1", "mechanism": "busybox wget", "verdict": "fail",
                              "evidence": {"endpoints": [ok, wrong]}})
    document["certification"] = certify(document["cases"], ["RBAC-2", "NETPOL-2", "NODE-1"], {}).document()
    markdown = render_markdown(document)
    section = markdown[markdown.index("## Endpoints: `test_node.py::test_kubelet` (NODE-1)"):]
    assert section.index("10255") < section.index("10250"), "the wrong row comes first"
    assert "| GET http://10.0.0.2:10255/pods | pod probe-0 on node-a | anonymous | no answer | 200 | WRONG |" in section
    page = render_html(document)
    assert '<tr class="mismatch"><td>GET http://10.0.0.2:10255/pods</td>' in page
    assert render_case_html(document["cases"][-1]).count("<tr") == 3


def test_an_unmarked_case_is_in_the_markdown_and_the_page_and_counts_in_no_verdict():
    data = _document()
    data["cases"].append({"case": "test_mine.py::test_helper", "file": "test_mine.py", "line": 3, "behaviour": "",
                          "mechanism": "", "verdict": "fail", "evidence": {}, "failure": "boom"})
    assert "| (unmarked) | `test_mine.py::test_helper` |  | **fail** | boom |" in render_markdown(data)
    page = render_html(data)
    assert "tests without a behaviour ID: reported, not counted in the verdict" in page and "test_helper" in page
