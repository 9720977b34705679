"""Waivers on a real run: a failure made by a negative control (an escalation verb the developer
role grants) is waived, certifies while the waiver holds, and fails the run the day after its
expiry. The day is set with K8SSEC_TODAY: the test controls the clock, it never waits."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import xmlschema
from controls import profile_with

WAIVERS = """waivers:
  - id: RBAC-2
    reason: token requests for the CI robot, until the new role lands
    owner: platform@example.com
    expires: 2026-12-31
"""


def test_a_waived_failure_certifies_only_until_the_waiver_expires(suite, pytester, monkeypatch, sarif_schema, junit_xsd):
    token = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    profile = profile_with(lambda d: d["developer_role"]["rules"].append(token))
    waivers = pytester.path / "waivers.yaml"
    waivers.write_text(WAIVERS)
    args = ("--k8s-sec-behaviours=RBAC-2", f"--k8s-sec-waivers={waivers}", "-v")

    monkeypatch.setenv("K8SSEC_TODAY", "2026-12-31")
    valid = suite(*args, "--junitxml=junit.xml", "--k8s-sec-report=report", profile=profile)
    assert valid.ret == 0, valid.stdout.str()[-3000:]
    valid.stdout.fnmatch_lines(["*test_user_can_i_matches_profile?impersonation? FAILED*",
                                "k8s-sec: CERTIFIED: * (1 waived)*",
                                "k8s-sec:   RBAC-2 waived: *failed, waived: token requests for the CI robot, until the new "
                                "role lands (owner platform@example.com, until 2026-12-31)*"])

    _check_sarif_and_junit(pytester.path, sarif_schema, junit_xsd)

    monkeypatch.setenv("K8SSEC_TODAY", "2027-01-01")
    expired = suite(*args, profile=profile)
    assert expired.ret == 1
    expired.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: RBAC-2, waivers *",
                                  "k8s-sec:   waiver for RBAC-2 expired on 2026-12-31 (owner platform@example.com)*"])


def _check_sarif_and_junit(path, sarif_schema, junit_xsd):
    """Both files validate; the waived failure is a suppressed SARIF result; JUnit carries verdict, claim and controls."""
    sarif = json.loads((path / "report" / "k8s-sec-report.sarif").read_text())
    jsonschema.validate(sarif, sarif_schema)
    results = sarif["runs"][0]["results"]
    assert {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}["RBAC-2"]["properties"]["claim"] == "posture"
    assert len(results) == 3, "the three ways of asking RBAC-2's questions each failed"
    for waived in results:
        assert waived["ruleId"] == "RBAC-2" and waived["level"] == "error" and waived["message"]["text"]
        assert waived["locations"][0]["physicalLocation"]["region"]["startLine"] > 0
        assert waived["suppressions"][0]["justification"].startswith("token requests for the CI robot")
    xmlschema.XMLSchema(str(junit_xsd)).validate(str(path / "junit.xml"))
    properties = {p.get("name"): p.get("value") for p in ET.parse(path / "junit.xml").iter("property")}
    assert properties["k8s-sec.verdict"] == "certified"
    assert properties["k8s-sec.RBAC-2"].startswith("waived; posture claim; controls: NSA Authentication and authorization"), \
        properties
