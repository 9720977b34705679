"""Refusals are attributed to the mechanism that gave them, from the API server's frame, never its wording."""

from __future__ import annotations

import pytest

from pytest_k8ssec.admission import Level
from pytest_k8ssec.answers import POD_SECURITY, Answer, attribute, mechanisms

# Messages as the API server words them around each mechanism's own text.
PSA = ('pods "escape" is forbidden: violates PodSecurity "restricted:latest": host namespaces (hostNetwork=true), '
       'privileged (container "main" must not set securityContext.privileged=true)')
VAP = ('pods "escape" is forbidden: ValidatingAdmissionPolicy \'engine.example\' with binding \'engine-everywhere\' '
       'denied request: failed expression: !object.spec.hostNetwork')
WEBHOOK = ('admission webhook "validate.kyverno.svc-fail" denied the request: \n\nresource Pod/x/escape was blocked '
           'due to the following policies\n\ndisallow-host-namespaces:\n  host-namespaces: validation error')
RBAC = 'pods "escape" is forbidden: User "ci" cannot create resource "pods" in API group "" in the namespace "x"'


@pytest.mark.parametrize("status, message, mechanism, policy", [
    (403, PSA, POD_SECURITY, ""),
    (403, VAP, "ValidatingAdmissionPolicy engine.example (binding engine-everywhere)", "engine.example"),
    (422, VAP, "ValidatingAdmissionPolicy engine.example (binding engine-everywhere)", "engine.example"),
    (400, WEBHOOK, "admission webhook validate.kyverno.svc-fail", "validate.kyverno.svc-fail"),
    (403, RBAC, "RBAC (the identity may not create pods)", ""),
    (422, 'Pod "x" is invalid: spec.containers: Required value', "object validation", ""),
    (403, "denied by a gatekeeper of a kind nobody knows", "unknown (HTTP 403)", ""),
], ids=["pod-security", "vap", "vap-invalid", "webhook", "rbac", "invalid", "unknown"])
def test_refusal_is_attributed_by_the_servers_frame(status, message, mechanism, policy):
    assert attribute(status, message) == (mechanism, policy)


def test_a_policy_quoting_pod_securitys_words_is_still_the_policy():
    """An engine whose message mimics Pod Security is named as the engine: the frame decides, not the words."""
    mimic = VAP + ' (violates PodSecurity "baseline")'
    assert attribute(403, mimic)[0].startswith("ValidatingAdmissionPolicy engine.example")


def test_mechanisms_lists_each_refuser_once():
    answers = [Answer(True), Answer(False, PSA, POD_SECURITY), Answer(False, PSA, POD_SECURITY),
               Answer(False, VAP, "ValidatingAdmissionPolicy engine.example (binding b)", "engine.example")]
    assert mechanisms(answers) == "Pod Security admission; ValidatingAdmissionPolicy engine.example (binding b)"
    assert mechanisms([Answer(True)]) == "none refused"


NEEDS = {"restricted": "restricted", "baseline": "baseline", "privileged": "privileged", "host-network": "privileged",
         "host-path": "privileged"}


def _level(admitted):
    return Level.read("ns", {probe: Answer(True) if probe in admitted else Answer(False, "no", "x") for probe in NEEDS}, NEEDS)


def test_an_engine_missing_one_host_rule_is_named_by_the_probe_it_admitted():
    found = _level({"restricted", "host-network"})
    assert found.level == "privileged"
    assert not found.at_least("baseline")
    assert found.offenders("baseline") == ["host-network"]
    assert "admitted the host-network probe pod 'k8ssec-level-host-network': it enforces privileged" in found.explain(
        "baseline", "the admin")


def test_root_admitted_is_baseline_and_offends_only_restricted():
    found = _level({"restricted", "baseline"})
    assert found.level == "baseline"
    assert found.at_least("baseline") and not found.at_least("restricted")
    assert found.offenders("restricted") == ["baseline"] and found.offenders("baseline") == []


def test_everything_refused_but_the_compliant_pod_is_restricted_and_nothing_refused_is_no_verdict():
    assert _level({"restricted"}).level == "restricted"
    assert _level(set()).level is None and "no verdict" in _level(set()).explain("baseline", "the admin")
