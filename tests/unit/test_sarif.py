"""SARIF from a stored report: valid against the OASIS 2.1.0 schema, with what code scanning needs."""

import datetime

import jsonschema

from pytest_k8ssec.certification import certify
from pytest_k8ssec.document import claim_kinds as _claims
from pytest_k8ssec.sarif import sarif_log
from pytest_k8ssec.waivers import Waiver

WAIVER = Waiver("RBAC-2", "the new role lands in January", "platform@example.com", datetime.date(2026, 12, 31))


def _document() -> dict:
    records = [
        {"case": "test_netpol.py::test_deny", "file": "/site/conformance/test_netpol.py", "line": 83, "behaviour": "NETPOL-2",
         "mechanism": "NetworkPolicy", "verdict": "fail", "evidence": {"cells": 12}, "failure": "reachability differs"},
        {"case": "test_rbac.py::test_can_i[sar]", "file": "conformance/test_rbac.py", "line": 62, "behaviour": "RBAC-2",
         "mechanism": "SAR", "verdict": "fail", "evidence": {}, "failure": "can-i differs"},
        {"case": "test_audit.py::test_log", "file": "conformance/test_audit.py", "line": 10, "behaviour": "AUDIT-1",
         "mechanism": "", "verdict": "skip", "evidence": {}, "reason": "no audit log"},
        {"case": "test_rbac.py::test_role", "file": "conformance/test_rbac.py", "line": 35, "behaviour": "RBAC-1",
         "mechanism": "RoleBinding", "verdict": "pass", "evidence": {}},
    ]
    certification = certify(records, ["RBAC-1", "RBAC-2", "AUDIT-1", "NETPOL-2"], {}, waivers=[WAIVER],
                            today=datetime.date(2026, 12, 1))
    return {"certification": certification.document(), "profile": "seeds-lab", "cases": records,
            "claims": _claims(["RBAC-1", "RBAC-2", "AUDIT-1", "NETPOL-2", "PSP-3"]),
            "cluster": {"provider": "local", "version": "v1.37.2", "netpol_enforcer": "kube-router"}}


def test_sarif_validates_against_the_schema(sarif_schema):
    jsonschema.validate(sarif_log(_document()), sarif_schema)


def test_a_rule_per_behaviour_and_a_result_per_finding():
    run = sarif_log(_document())["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["RBAC-1", "RBAC-2", "AUDIT-1", "NETPOL-2"]
    assert "CIS 5.3.1" in run["tool"]["driver"]["rules"][3]["fullDescription"]["text"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert set(by_rule) == {"NETPOL-2", "RBAC-2", "AUDIT-1"}, "a passing case is no finding"
    assert by_rule["NETPOL-2"]["level"] == "error" and "suppressions" not in by_rule["NETPOL-2"]
    assert by_rule["NETPOL-2"]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///site/conformance/test_netpol.py"}
    assert by_rule["RBAC-2"]["suppressions"] == [{"kind": "external", "status": "accepted", "justification":
                                                  "the new role lands in January (owner platform@example.com, until 2026-12-31)"}]
    assert by_rule["AUDIT-1"]["level"] == "warning" and "not observed: no audit log" in by_rule["AUDIT-1"]["message"]["text"]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    assert run["properties"]["certification"] == "not certified"


def test_each_rule_says_its_kind_of_claim_and_a_capability_names_no_control(sarif_schema):
    data = _document()
    data["cases"].append({"case": "test_admission.py::test_ctl", "file": "conformance/test_admission.py", "line": 9,
                          "behaviour": "PSP-3", "mechanism": "gate", "verdict": "pass", "evidence": {}})
    data["certification"] = certify(data["cases"], ["RBAC-2", "PSP-3"], {}).document()
    log = sarif_log(data)
    jsonschema.validate(log, sarif_schema)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["RBAC-2"]["properties"]["claim"] == "posture" and "posture" in rules["RBAC-2"]["properties"]["tags"]
    gate = rules["PSP-3"]["properties"]
    assert gate["claim"] == "capability" and gate["tags"] == ["security", "kubernetes", "capability"] and gate["controls"] == []
    assert "Claim: capability. Controls: no control: the suite's own gate" in rules["PSP-3"]["fullDescription"]["text"]
    older = sarif_log({k: v for k, v in data.items() if k != "claims"})["runs"][0]["tool"]["driver"]["rules"]
    assert all("claim" not in r["properties"] for r in older), "a report older than claims gets none made up"


def test_a_failed_node1_case_is_a_finding_under_its_kubelet_controls(sarif_schema):
    rows = [{"endpoint": "GET https://10.0.0.5:10250/pods", "from": "pod probe-0 on n1", "as": "no credentials",
             "expected": "HTTP 401", "observed": "HTTP 200", "verdict": "WRONG"}]
    data = {"certification": certify([], ["NODE-1"], {}).document(), "profile": "seeds-lab", "claims": _claims(["NODE-1"]),
            "cluster": {"provider": "local", "version": "v1.37.2", "netpol_enforcer": "kube-router"},
            "cases": [{"case": "test_node.py::test_kubelet_refuses_pods_without_proper_credentials",
                       "file": "conformance/test_node.py", "line": 166, "behaviour": "NODE-1", "mechanism": "relay",
                       "verdict": "fail", "evidence": {"endpoints": rows},
                       "failure": "GET https://10.0.0.5:10250/pods as no credentials: expected HTTP 401, observed HTTP 200"}]}
    data["certification"] = certify(data["cases"], ["NODE-1"], {}).document()
    log = sarif_log(data)
    jsonschema.validate(log, sarif_schema)
    run = log["runs"][0]
    rule = run["tool"]["driver"]["rules"][0]
    assert rule["id"] == "NODE-1" and rule["properties"]["claim"] == "posture"
    for control in ("CIS 4.2.1", "CIS 4.2.2", "CIS 4.2.4", "NSA Network separation and hardening: Control plane hardening"):
        assert control in rule["fullDescription"]["text"], rule["fullDescription"]["text"]
    assert run["results"][0]["level"] == "error" and "observed HTTP 200" in run["results"][0]["message"]["text"]


def test_a_users_own_claims_and_unmarked_tests_are_rules_and_findings_too(sarif_schema):
    data = _document()
    data["cases"] += [
        {"case": "test_claims.py::test_claim[SHOP-3]", "file": "conformance/test_claims.py", "line": 70,
         "behaviour": "SHOP-3", "mechanism": "NetworkPolicy", "verdict": "fail", "evidence": {}, "failure": "reached"},
        {"case": "test_mine.py::test_helper", "file": "test_mine.py", "line": 3, "behaviour": "",
         "mechanism": "", "verdict": "fail", "evidence": {}, "failure": "boom"},
    ]
    certification = certify(data["cases"], ["RBAC-1", "SHOP-3"], {})
    data["certification"] = certification.document()
    data["certification"]["behaviours"]["SHOP-3"]["title"] = "the frontend cannot reach the db"
    log = sarif_log(data)
    jsonschema.validate(log, sarif_schema)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["SHOP-3"]["shortDescription"]["text"] == "SHOP-3: the frontend cannot reach the db"
    assert "the user's own claim" in rules["SHOP-3"]["fullDescription"]["text"]
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"SHOP-3", "unmarked"}
