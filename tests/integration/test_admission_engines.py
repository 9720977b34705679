"""Portability of the admission verdicts: the local cluster hardened by a policy engine instead of, or
beside, Pod Security admission is certified for what it does, and fails where the engine has a gap.

The engine is a ValidatingAdmissionPolicy with restricted-like rules (no host namespaces, no
privileged containers, non-root, no hostPath) in every namespace but kube-system, as clusters
hardened with Kyverno, Gatekeeper or their own policies have. Each configuration is one API
server restart, shared by the good run and its negative controls.
"""

from __future__ import annotations

import contextlib
import json

from kubernetes import client

from pytest_k8ssec.answers import attribute
from pytest_k8ssec.waits import wait_for

from controls import apiserver_without, certified, failed, pod_security_default, profile_with

EXEMPT = "k8ssec-test/engine-exempt"
RULES = {
    "host-namespaces": "!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && "
                       "!(has(object.spec.hostPID) && object.spec.hostPID) && !(has(object.spec.hostIPC) && object.spec.hostIPC)",
    "privileged": "((has(object.spec.initContainers) ? object.spec.initContainers : []) + object.spec.containers).all(c, "
                  "!(has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged))",
    "non-root": "object.spec.containers.all(c, (has(c.securityContext) && has(c.securityContext.runAsNonRoot) && "
                "c.securityContext.runAsNonRoot) || (has(object.spec.securityContext) && "
                "has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot))",
    "no-host-path": "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))",
}


def engine(run, rules: dict[str, str]) -> str:
    """Install the engine (removed with the test's run) and wait until it refuses a hostNetwork or root pod."""
    name = run.name("engine")
    run.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {"failurePolicy": "Fail",
                         "matchConstraints": {
                             "namespaceSelector": {"matchExpressions": [
                                 {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]},
                                 {"key": EXEMPT, "operator": "DoesNotExist"}]},
                             "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                                "resources": ["pods"]}]},
                         "validations": [{"expression": rule, "message": f"engine rule {key}"} for key, rule in rules.items()]}})
    run.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}})
    core = client.CoreV1Api(run.api)
    probe = {"metadata": {"name": "engine-probe"},
             "spec": {"containers": [{"name": "c", "image": "k8ssec.invalid/absent:1"}]}}

    def refusal() -> str:
        try:
            core.create_namespaced_pod(run.control_ns, probe, dry_run="All")
            return ""
        except client.ApiException as exc:
            return attribute(exc.status, json.loads(exc.body)["message"])[1]
    wait_for(f"the engine {name} to refuse a root pod", refusal, timeout=30, ready=lambda policy: policy == name)
    return name


@contextlib.contextmanager
def engine_installed(run, rules: dict[str, str]):
    """The engine for a block of runs; removed at once after it (the test's run removes it again at the end)."""
    name = engine(run, rules)
    try:
        yield name
    finally:
        api = client.AdmissionregistrationV1Api(run.api)
        api.delete_validating_admission_policy_binding(name)
        api.delete_validating_admission_policy(name)


def _report(pytester) -> dict:
    return json.loads((pytester.path / "report" / "k8s-sec-report.json").read_text())


def _not_applicable(report: dict) -> dict[str, str]:
    return {c["case"]: c.get("reason", "") for c in report["cases"] if c["verdict"] == "n/a"}


WITHOUT_HOST_RULE = {k: v for k, v in RULES.items() if k != "host-namespaces"}
HOST_NETWORK_ADMITTED = ("*in namespace k8ssec-*-unlabelled the user alice (impersonated, groups mirantis, developers) was "
                         "admitted the host-network probe pod 'k8ssec-level-host-network': it enforces privileged, "
                         "the profile requires at least baseline*")


def test_engine_beside_pod_security_at_its_upstream_default(suite, local_cluster, run, pytester):
    """Pod Security admission as upstream ships it (privileged unless a namespace says otherwise), and the engine."""
    pytester.makepyfile(gate_audits_only=GATE_AUDITS_ONLY)
    with pod_security_default(local_cluster, "privileged"):
        # without the engine, the upstream default fails the default-level claim
        bare = suite("--k8s-sec-behaviours=PRIV-1", "-v")
        with engine_installed(run, RULES) as name:
            good = suite("--k8s-sec-report=report", "-v", "-rs")
            gate_behind = suite("--k8s-sec-behaviours=PSP-1,PSP-2,PSP-3", "-p", "gate_audits_only", "-v")
        with engine_installed(run, WITHOUT_HOST_RULE):
            gap = suite("--k8s-sec-behaviours=PRIV-1", "-v")

    assert failed(bare) == {"test_privileged_pod_rejected_where_nobody_labelled_the_namespace",
                            "test_named_namespaces_are_hardened"}
    bare.stdout.fnmatch_lines([
        "*in namespace k8ssec-*-unlabelled the user alice (impersonated, groups mirantis, developers) was admitted the privileged "
        "probe pod 'k8ssec-level-privileged' and the host-network probe pod 'k8ssec-level-host-network' and the host-path "
        "probe pod 'k8ssec-level-host-path': it enforces privileged, the profile requires at least baseline*",
        "*in namespace default the admin was admitted the privileged probe pod*"])

    assert good.ret == 0 and certified(good), good.stdout.str()[-4000:]
    report = _report(pytester)
    skipped = _not_applicable(report)
    assert "stricter than the claim" in skipped["test_privileged_pod_without_enforcement_sees_node_network"]
    assert f"by ValidatingAdmissionPolicy {name}" in skipped["test_permissive_policy_admits_its_service_account"]
    mechanisms = " ".join(c["mechanism"] for c in report["cases"])
    assert "Pod Security admission" in mechanisms and f"ValidatingAdmissionPolicy {name}" in mechanisms

    assert failed(gate_behind) == {"test_non_root_pod_rejected_without_authorized_policy",
                                   "test_restricted_policy_admits_non_root_but_not_privileged_or_root",
                                   "test_restricted_policy_covers_ephemeral_containers",
                                   "test_controller_cannot_create_pods_until_service_account_authorized[ReplicationController]",
                                   "test_controller_cannot_create_pods_until_service_account_authorized[ReplicaSet]"}

    assert failed(gap) == {"test_privileged_pod_rejected_where_nobody_labelled_the_namespace",
                           "test_named_namespaces_are_hardened"}
    gap.stdout.fnmatch_lines([HOST_NETWORK_ADMITTED])


GATE_AUDITS_ONLY = """
from pytest_k8ssec import admission
original = admission.gating_binding
# the suite's gate only audits: behind the engine, the engine's refusals must not pass the gate's own claims
admission.gating_binding = lambda name, policy: {**original(name, policy), "spec": {"policyName": policy,
                                                                                    "validationActions": ["Audit"]}}
"""


def test_engine_instead_of_pod_security(suite, local_cluster, run, pytester):
    """The PodSecurity admission plugin off; the engine alone hardens, with an exemption label for the profile's
    permissive namespace."""
    profile = profile_with(lambda d: d["admission"].update(permissive_namespace_labels={EXEMPT: "true"}))
    with apiserver_without(local_cluster, "PodSecurity"):
        bare = suite("--k8s-sec-behaviours=PRIV-1", "-v")
        with engine_installed(run, RULES) as name:
            good = suite("--k8s-sec-report=report", "-v", "-rs", profile=profile)
        with engine_installed(run, WITHOUT_HOST_RULE):
            gap = suite("--k8s-sec-behaviours=PRIV-1", "-v")

    bare.stdout.fnmatch_lines(["*test_privileged_pod_rejected_on_hardened_namespace FAILED*",
                               "*a privileged hostNetwork pod was admitted*no admission mechanism refused it*"])

    assert good.ret == 0 and certified(good), good.stdout.str()[-4000:]
    report = _report(pytester)
    skipped = _not_applicable(report)
    assert "test_privileged_pod_without_enforcement_sees_node_network" not in skipped  # the exempt namespace admits it
    assert f"by ValidatingAdmissionPolicy {name}" in skipped["test_permissive_policy_admits_its_service_account"]
    mechanisms = " ".join(c["mechanism"] for c in report["cases"])
    assert "Pod Security admission" not in mechanisms and f"ValidatingAdmissionPolicy {name}" in mechanisms

    assert failed(gap) == {"test_privileged_pod_rejected_where_nobody_labelled_the_namespace",
                           "test_named_namespaces_are_hardened"}
    gap.stdout.fnmatch_lines([HOST_NETWORK_ADMITTED])
