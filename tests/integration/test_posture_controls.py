"""Negative controls of the posture checks: each breaks the real local cluster the way a misconfigured
cluster is broken, and the case that claims the behaviour fails (or gives no verdict), never passes.

Also the portability matrix: the local cluster configured as other well-run clusters are
(restricted by default, no client-certificate signer) passes for our reasons; policy engines
instead of or beside Pod Security admission are in test_admission_engines.py.
"""

from __future__ import annotations

import threading

from kubernetes import client

from pytest_k8ssec import rbac
from pytest_k8ssec.waits import wait_for

from controls import certified, failed, pod_security_default, profile_with


def test_restricted_by_default_cluster_is_certified(suite, local_cluster):
    """Every pod the suite makes in a namespace it does not label is restricted-compliant."""
    with pod_security_default(local_cluster, "restricted"):
        result = suite("-rs")
    assert result.ret == 0 and certified(result), result.stdout.str()[-3000:]


def test_without_a_client_certificate_signer_certificate_cases_skip_with_the_reason(suite, local_cluster):
    unsigned = ["--cluster-signing-cert-file=", "--cluster-signing-key-file="]
    local_cluster.start_component("kube-controller-manager", unsigned)
    try:
        result = suite("--k8s-sec-behaviours=USER-1,RBAC-1,RBAC-2,RBAC-3", "-v", "-rs")
    finally:
        local_cluster.start_component("kube-controller-manager")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["SKIPPED*no client certificate was issued*signs none for kubernetes.io/kube-apiserver-client*"
                                 "give the profile a user.kubeconfig*"])
    # the certificate user's cases are not observed; the same rights asked other ways still are
    result.stdout.fnmatch_lines(["*test_user_can_i_matches_profile?impersonation? PASSED*",
                                 "k8s-sec: NOT CERTIFIED: USER-1, RBAC-2, RBAC-3 *"])
    assert result.ret == 1


def test_grant_to_developers_in_a_namespace_the_run_did_not_make_fails_rbac2(suite, admin, run):
    name = run.name("developers-edit")
    rbac_api = client.RbacAuthorizationV1Api(admin)
    rbac_api.create_namespaced_role_binding("default", rbac.binding(name, "ClusterRole", "edit", [rbac.group("developers")],
                                                                    "default"))
    try:
        result = suite("--k8s-sec-behaviours=RBAC-2", "-v")
    finally:
        rbac_api.delete_namespaced_role_binding(name, "default")
    assert failed(result) == {"test_user_rights_end_at_the_tenant_namespace"}
    result.stdout.fnmatch_lines(["*the developers have rights outside the tenant namespace*",
                                 f"*create pods in default (RoleBinding default/{name} -> ClusterRole edit)*no*yes*<-- MISMATCH*"])


def test_grant_to_the_users_other_group_is_seen_by_impersonation_too(suite, run):
    """The user is in mirantis and developers; impersonation asks with both groups, as the certificate does."""
    name = run.name("mirantis-list-nodes")  # removed with the test's run
    run.create(rbac.role(name, [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]))
    run.create(rbac.binding(name, "ClusterRole", name, [rbac.group("mirantis")]))
    result = suite("--k8s-sec-behaviours=RBAC-2", "-v")
    assert {f"test_user_can_i_matches_profile[{m}]" for m in ("certificate-user", "impersonation",
                                                              "subjectaccessreview")} <= failed(result)
    result.stdout.fnmatch_lines(["*list nodes in cluster*no*yes*<-- MISMATCH*"])


def test_use_of_every_policy_granted_to_all_authenticated_fails_psp1(suite, run):
    """The gate's authorizer check cannot see a grant to system:authenticated; PSP-1's precondition does."""
    name = run.name("everyone-uses-policies")  # removed with the test's run
    run.create(rbac.role(name, [{"apiGroups": ["policy"], "resources": ["podsecuritypolicies"], "verbs": ["use"]}]))
    run.create(rbac.binding(name, "ClusterRole", name, [rbac.group("system:authenticated")]))
    result = suite("--k8s-sec-behaviours=PSP-1", "-v")
    assert "test_non_root_pod_rejected_without_authorized_policy" in failed(result)
    result.stdout.fnmatch_lines(["*(with system:authenticated) may already use *grants `use` of pod security policies to every*"])


def test_escalation_verb_granted_fails_rbac2(suite):
    token = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    profile = profile_with(lambda d: d["developer_role"]["rules"].append(token))
    result = suite("--k8s-sec-behaviours=RBAC-2", "-v", profile=profile)
    assert failed(result) == {f"test_user_can_i_matches_profile[{m}]" for m in ("certificate-user", "impersonation",
                                                                              "subjectaccessreview")}
    result.stdout.fnmatch_lines(["*create serviceaccounts/token in tenant*no*yes*<-- MISMATCH*"])


FROZEN_TARGET = '''
from pytest_k8ssec import reachability
from pytest_k8ssec.pods import exec_in

# SIGSTOP the httpd serving port 8081 in tenant/nginx-0: the kernel still accepts connections,
# nothing answers, and a probe times out exactly as it does against a dropping policy. Port 8080,
# which the readiness probe checks, keeps serving, so the pod stays Ready.
FREEZE = ("for p in /proc/[0-9]*; do case $(tr '\\\\0' ' ' < $p/cmdline 2>/dev/null) in httpd*8081*) kill -STOP ${p#/proc/};; "
          "esac; done; true")
original = reachability.Lab._addresses

def frozen(self, wait=0):
    addresses = original(self, wait)
    exec_in(self.api, self.model.real_name("tenant"), "nginx-0", ["sh", "-c", FREEZE])
    return addresses

reachability.Lab._addresses = frozen
'''


def test_probe_target_that_stops_serving_gives_no_deny_verdict(suite, pytester):
    pytester.makepyfile(frozen_target=FROZEN_TARGET)
    result = suite("--k8s-sec-behaviours=NETPOL-1,NETPOL-2,NETPOL-3", "-p", "frozen_target", "-v")
    outcomes = result.parseoutcomes()
    assert "passed" not in outcomes and result.ret == 1, outcomes
    result.stdout.fnmatch_lines(["*test_no_policy_every_client_reaches_nginx FAILED*",
                                 "*test_default_deny_blocks_every_client FAILED*",
                                 "*ProbeError: positive control failed: with no policy in force*",
                                 "*-> tenant/nginx-0 port 8081*expected ALLOWED, observed BLOCKED*"])


def test_daemonset_whose_pods_are_refused_fails_priv2(suite, admin, run):
    """Enforcement that stops a kube-system DaemonSet from creating its pods leaves no pod behind to look at."""
    refuse = {"k8ssec.io/refuse": run.id}
    policy = run.name("refuse")
    run.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": policy},
                "spec": {"failurePolicy": "Fail",
                         "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                                 "operations": ["CREATE"], "resources": ["pods"]}]},
                         "validations": [{"expression": "!has(object.metadata.labels) || !('k8ssec.io/refuse' in object.metadata.labels)",
                                          "message": "refused by the PRIV-2 negative control"}]}})
    run.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": policy}, "spec": {"policyName": policy, "validationActions": ["Deny"]}})
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    probe = {"metadata": {"name": "k8ssec-refuse-probe", "labels": refuse},
             "spec": {"containers": [{"name": "c", "image": "k8ssec.invalid/absent:1"}]}}

    def refused() -> bool:
        try:
            core.create_namespaced_pod("kube-system", probe, dry_run="All")
            return False
        except client.ApiException as exc:
            return exc.status == 422  # a ValidatingAdmissionPolicy without a reason refuses as Invalid
    wait_for("the refusing policy to take effect", refused, timeout=30)
    name = run.name("cni-agent")  # kube-system is no run's namespace: this test removes the DaemonSet itself
    template = {"metadata": {"labels": {**refuse, "app": name}},
                "spec": {"hostNetwork": True, "containers": [{"name": "agent", "image": "k8ssec.invalid/absent:1",
                                                              "securityContext": {"privileged": True}}]}}
    apps.create_namespaced_daemon_set("kube-system", {"metadata": {"name": name, "labels": run.labels},
                                                      "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}})
    try:
        wait_for(f"a FailedCreate event for DaemonSet {name}",
                 lambda: [e for e in core.list_namespaced_event("kube-system").items
                          if e.reason == "FailedCreate" and e.involved_object.name == name], timeout=60)
        result = suite("--k8s-sec-behaviours=PRIV-2", "-v")
    finally:
        apps.delete_namespaced_daemon_set(name, "kube-system")
    assert failed(result) == {"test_control_plane_privileged_pods_keep_running"}
    result.stdout.fnmatch_lines([f"*kube-system workloads lack pods: DaemonSet {name}: 0/1 ready (FailedCreate:*"
                                 "refused by the PRIV-2 negative control*"])


def test_audit_log_that_is_missing_or_stops_growing_fails_audit1(suite, local_cluster):
    log = local_cluster.layout.audit_log
    moved = log.with_name(log.name + ".moved")
    log.rename(moved)  # the API server keeps writing to the file it has open, now under another name
    try:
        missing = suite("--k8s-sec-behaviours=AUDIT-1")
        log.touch()
        still = suite("--k8s-sec-behaviours=AUDIT-1")
    finally:
        log.unlink(missing_ok=True)
        moved.rename(log)
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*no audit log where one must be*does not exist*"])
    still.assert_outcomes(failed=1)
    still.stdout.fnmatch_lines(["*expected events missing from the audit log*"])


def test_reads_granted_to_unauthenticated_users_fail_rbac2(suite, run):
    run.create(rbac.binding(run.name("anonymous-view"), "ClusterRole", "view", [rbac.group("system:unauthenticated")]))
    result = suite("--k8s-sec-behaviours=RBAC-2", "-v")
    assert failed(result) == {"test_unauthenticated_requests_read_nothing"}
    result.stdout.fnmatch_lines(["*a request without credentials was answered: *list pods in all namespaces (HTTP 200)*"])


def test_enforcer_that_flaps_passes_no_deny_case(suite, local_cluster):
    """kube-router stopped (its rules removed) and started again every few seconds: a deny case needs
    two consecutive matching rounds (over 4 s of blocked probes), which no enforced window holds."""
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            local_cluster.stop_component("kube-router")
            if stop.wait(3):
                break
            local_cluster.start_component("kube-router")
            stop.wait(3)

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    try:
        result = suite("--k8s-sec-behaviours=NETPOL-2,NETPOL-3", "-v")
    finally:
        stop.set()
        flapper.join()
        local_cluster.start_component("kube-router")
    outcomes = result.parseoutcomes()
    assert "passed" not in outcomes and result.ret == 1, outcomes
