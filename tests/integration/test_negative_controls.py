"""The suite passes on the good cluster and fails, with the right evidence, on one broken in one way.

Each control breaks the real local cluster (or the subjects the suite creates) for one behaviour,
runs the installed suite with pytester, checks that exactly that case fails, and restores it.
"""

from __future__ import annotations

import json

import yaml
from kubernetes import client

from pytest_k8ssec.local.images import IMAGES
from pytest_k8ssec.profile import default_profile_path, parse_profile

from controls import apiserver_without, failed, profile_with

def test_whole_suite_passes_on_the_local_cluster(suite, pytester):
    result = suite("--k8s-sec-report=report", "-rs")
    outcomes = result.parseoutcomes()
    report = json.loads((pytester.path / "report" / "k8s-sec-report.json").read_text())
    # the skips allowed: a single-node cluster has no cross-node traffic; etcd, the controller-manager and
    # the scheduler listen on 127.0.0.1, where no pod reaches them (NODE-1, not applicable)
    unreachable = [c for c in report["cases"] if c["behaviour"] == "NODE-1" and c["verdict"] == "n/a"]
    assert all("is not reachable from pods on this cluster" in c["reason"] for c in unreachable), unreachable
    # and the admin-tier cases: kube-router's cluster serves no AdminNetworkPolicy
    tiers = [c for c in report["cases"] if c["behaviour"] in ("NETPOL-6", "NETPOL-7", "NETPOL-8")]
    assert len(tiers) == 3 and all(c["verdict"] == "n/a" and "does not serve AdminNetworkPolicy" in c["reason"]
                                   for c in tiers), tiers
    assert result.ret == 0 and outcomes["passed"] >= 30 and outcomes.get("skipped", 0) == 1 + len(unreachable) + len(tiers), outcomes
    result.stdout.fnmatch_lines(["SKIPPED*the cluster has 1 node: no cross-node traffic to check"])
    assert {c["verdict"] for c in report["cases"]} == {"pass", "n/a"}
    assert report["certification"]["verdict"] == "certified"
    result.stdout.fnmatch_lines(["k8s-sec: CERTIFIED: every required behaviour was observed*"])
    assert report["cluster"]["provider"] == "local"


def test_role_granting_exec_fails_rbac2_with_matrix(suite):
    profile = profile_with(lambda d: d["developer_role"]["rules"][0]["resources"].append("pods/exec"))
    result = suite("--k8s-sec-behaviours=RBAC-2", profile=profile)
    result.assert_outcomes(failed=3, passed=2)  # the rights still end at the tenant; anonymous reads nothing
    result.stdout.fnmatch_lines(["*can-i*expected*observed*", "*create pods/exec in tenant*no*yes*<-- MISMATCH*"])


def test_cluster_admin_for_all_authenticated_fails_every_bounded_right(suite, run):
    run.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": run.name("everyone-admin")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]})
    result = suite("--k8s-sec-behaviours=RBAC-1,RBAC-2,RBAC-4,RBAC-5,RBAC-6,EXC-2", "-v")
    result.stdout.fnmatch_lines(["*list nodes in cluster*no*yes*<-- MISMATCH*", "*get secrets in tenant*no*yes*<-- MISMATCH*"])
    assert failed(result) == {
        "test_developer_role_grants_group_members_in_tenant_only",
        "test_user_can_i_matches_profile[certificate-user]",
        "test_user_can_i_matches_profile[impersonation]",
        "test_user_can_i_matches_profile[subjectaccessreview]",
        "test_user_rights_end_at_the_tenant_namespace",
        "test_subject_access_review_for_any_user_follows_bindings",
        "test_no_subject_class_holds_an_escalation_right",
        "test_can_i_use_reports_the_exception_for_that_account_only",
    }
    result.stdout.fnmatch_lines([f"*every authenticated user (system:authenticated) may get secrets in every namespace: "
                                 f"ClusterRoleBinding {run.name('everyone-admin')} -> ClusterRole cluster-admin*"])
    # the dangling binding's ghost account may list pods through this grant, not through the dangling binding
    result.stdout.fnmatch_lines(["*test_dangling_binding_is_accepted_grants_nothing_and_is_found PASSED*"])
    # every answer is "yes", so the three ways of asking still agree: that case is not about bounds
    result.stdout.fnmatch_lines(["*test_three_ways_of_asking_agree_for_the_certificate_user PASSED*"])


def test_certificate_with_wrong_group_fails_the_certificate_user_case(suite):
    profile = profile_with(lambda d: d["user"].update(groups=["mirantis", "testers"]))
    result = suite("--k8s-sec-behaviours=RBAC-2,USER-1", "-v", profile=profile)
    result.stdout.fnmatch_lines(["*test_user_can_i_matches_profile?certificate-user? FAILED*",
                                 "*create pods in tenant*yes*no*<-- MISMATCH*"])


def test_without_gating_policy_every_gated_case_fails(suite, local_cluster):
    with apiserver_without(local_cluster, "ValidatingAdmissionPolicy"):
        result = suite("--k8s-sec-behaviours=PSP-1,PSP-2,PSP-3,EXC-1", "-v")
    result.stdout.fnmatch_lines(["*pods were created although their service account may use no policy*"])
    assert failed(result) == {
        "test_non_root_pod_rejected_without_authorized_policy",
        "test_restricted_policy_admits_non_root_but_not_privileged_or_root",
        "test_controller_cannot_create_pods_until_service_account_authorized[ReplicationController]",
        "test_controller_cannot_create_pods_until_service_account_authorized[ReplicaSet]",
        "test_restricted_policy_covers_ephemeral_containers",
        "test_permissive_policy_refuses_other_service_accounts",
    }


def test_gate_that_ignores_grants_fails_psp4(suite, pytester):
    pytester.makepyfile(breakage="""
        from pytest_k8ssec import admission
        admission._may_use = lambda policy: "false"  # no grant of `use` is ever seen
    """)
    result = suite("--k8s-sec-behaviours=PSP-3,PSP-4", "-p", "breakage", "-v")
    assert failed(result) == {"test_controller_creates_pods_once_service_accounts_authorized"}
    result.stdout.fnmatch_lines(["*timed out*the controllers' pods to run*"])


def test_stopped_kube_system_pod_fails_priv2(suite, admin, run):
    core = client.CoreV1Api(admin)
    name = run.name("cni-agent")  # kube-system is no run's namespace: this test removes the pod itself
    core.create_namespaced_pod("kube-system", {
        "metadata": {"name": name, "labels": run.labels},
        "spec": {"hostNetwork": True, "containers": [{"name": "agent", "image": "k8ssec.invalid/absent:1",
                                                      "imagePullPolicy": "Never", "securityContext": {"privileged": True}}]}})
    try:
        result = suite("--k8s-sec-behaviours=PRIV-2", "-v")
    finally:
        core.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)
    assert failed(result) == {"test_control_plane_privileged_pods_keep_running"}
    result.stdout.fnmatch_lines([f"*privileged control-plane pods are not running*{name}: Pending*"])


def test_root_image_that_starts_fails_psp5(suite):
    """An image that does not run as root stands for a kubelet that does not check runAsNonRoot."""
    nonroot = IMAGES["busybox-nonroot"].reference
    profile = profile_with(lambda d: d.setdefault("images", {}).update(root_user=nonroot))
    result = suite("--k8s-sec-behaviours=PSP-5", "-v", profile=profile)
    assert failed(result) == {"test_root_image_under_run_as_non_root_never_starts"}
    result.stdout.fnmatch_lines(["*started under runAsNonRoot*"])


def test_role_update_that_never_lands_fails_rbac3(suite, pytester):
    pytester.makepyfile(breakage="""
        from kubernetes import client
        # the role is patched in name only: the authorizer keeps seeing the old rules
        client.RbacAuthorizationV1Api.patch_cluster_role = lambda self, name, body, **kw: None
        client.RbacAuthorizationV1Api.patch_namespaced_role = lambda self, name, ns, body, **kw: None
    """)
    result = suite("--k8s-sec-behaviours=RBAC-3", "-p", "breakage", "-v")
    assert failed(result) == {"test_role_update_takes_effect_without_restart"}
    result.stdout.fnmatch_lines(["*after the role update, can-i answers differ from the profile*", "*<-- MISMATCH*"])


def test_privilege_escalation_allowed_fails_verify1_on_no_new_privs(suite, pytester):
    pytester.makepyfile(breakage="""
        from pytest_k8ssec import pods
        pods.RESTRICTED_CONTAINER["allowPrivilegeEscalation"] = True
    """)
    profile = profile_with(lambda d: d["admission"].update(tenant_level="baseline"))
    result = suite("--k8s-sec-behaviours=VERIFY-1", "-p", "breakage", profile=profile)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'NoNewPrivs': '0'*"])


def test_audit_policy_recording_nothing_fails_audit1(suite, local_cluster):
    silent = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
    profile = yaml.safe_load(default_profile_path().read_text())
    local_cluster.write_audit_policy(silent)
    local_cluster.start_component("kube-apiserver")
    try:
        result = suite("--k8s-sec-behaviours=AUDIT-1")
    finally:
        local_cluster.write_audit_policy(profile["audit"]["policy"])
        local_cluster.start_component("kube-apiserver")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected events missing from the audit log*", "*create pods in *-> 201*"])


NETPOL_CASES = "--k8s-sec-behaviours=NETPOL-1,NETPOL-2,NETPOL-3,NETPOL-4,NETPOL-5"


def test_without_networkpolicy_enforcer_deny_cases_fail_with_unexpected_dots(suite, local_cluster, pytester, open_in_chromium):
    local_cluster.stop_component("kube-router")
    try:
        result = suite(NETPOL_CASES, "-v", "--k8s-sec-report=report", "--html=pytest-html.html", "--self-contained-html")
    finally:
        local_cluster.start_component("kube-router")
    result.stdout.fnmatch_lines(["*test_no_policy_every_client_reaches_nginx PASSED*",
                                 "*test_default_deny_blocks_every_client FAILED*",
                                 "*expected BLOCKED, observed ALLOWED*"])
    # every case whose policies block something fails; the named-port case blocks port 8081
    result.assert_outcomes(passed=1, failed=6, skipped=1)
    assert "'-' as expected, else the OBSERVED outcome" in result.stdout.str()
    assert "kubectl exec -n " in result.stdout.str()
    # the HTML report renders in a browser, and NETPOL-2's observed grid frames the cells that opened
    dom, console = open_in_chromium(pytester.path / "report" / "k8s-sec-report.html")
    assert console == [], console
    assert '<span class="verdict not-certified">NOT CERTIFIED</span>' in dom
    deny = dom[dom.index('id="test_default_deny_blocks_every_client"'):]
    deny = deny[:deny.index("</article>")]
    assert deny.count('class="allowed diff"') > 0 and 'class="blocked diff"' not in deny
    # pytest-html's report carries the same grids in the failed case's row
    dom, _ = open_in_chromium(pytester.path / "pytest-html.html")
    row = dom[dom.index('id="test_netpol.py::test_default_deny_blocks_every_client"'):].split('<tbody class="results-table-row')[0]
    assert '<div class="evidence">' in row and 'class="allowed diff"' in row


def test_without_cluster_dns_nginx_is_not_reached_by_name(suite, local_cluster):
    """The IP matrix still answers; the seed's `wget nginx` does not, so NETPOL-1 fails.

    The lookup either outlasts the probe (BLOCKED) or is refused at once ("bad address", an
    ERROR): which one depends on how soon the DNS Service loses its endpoints.
    """
    local_cluster.stop_component("coredns")
    try:
        result = suite("--k8s-sec-behaviours=NETPOL-1", "-v")
    finally:
        local_cluster.start_component("coredns")
    result.stdout.re_match_lines([r".*tenant/access -> tenant/svc:nginx port 8080/TCP \(http\): expected ALLOWED, observed (BLOCKED|ERROR).*",
                                  r".*wget -q -O - http://nginx\.k8ssec-.*-np-tenant:8080.*"])
    assert result.ret == 1 and "k8s-sec: NOT CERTIFIED: NETPOL-1" in result.stdout.str()


def test_crashing_probe_gives_question_marks_and_errors_not_passes(suite, pytester):
    pytester.makepyfile(crashing_probe="""
        from pytest_k8ssec import reachability
        from pytest_k8ssec.netpol.probe import Tools
        # every probe dies of SIGSEGV, as busybox `wget -T` does
        reachability.TOOLS = Tools(wget=("sh", "-c", "kill -SEGV $$", "wget"))
    """)
    result = suite("--k8s-sec-behaviours=NETPOL-1,NETPOL-2", "-p", "crashing_probe", "-v")
    outcomes = result.parseoutcomes()
    assert result.ret != 0 and "passed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["*ProbeError*could not tell allowed from blocked*", "*wget crashed*"])
    assert "?" in result.stdout.str()


def test_role_already_granting_the_update_fails_rbac3(suite):
    """A developer role that grants pods/log before the update: the "yes" after it would show nothing about the update."""
    profile = profile_with(lambda d: d["developer_role"]["rules"][0]["resources"].append("pods/log"))
    parse_profile(yaml.safe_load(profile))  # a valid profile: only the cluster's grant makes RBAC-3 vacuous
    result = suite("--k8s-sec-behaviours=RBAC-3", "-v", profile=profile)
    assert failed(result) == {"test_role_update_takes_effect_without_restart"}
    result.stdout.fnmatch_lines(["*before the role update, the cluster already grants the user: get pods/log in tenant; *",
                                 "*get pods/log in tenant*no*yes*<-- MISMATCH*"])
    assert result.ret == 1 and "k8s-sec: NOT CERTIFIED: RBAC-3" in result.stdout.str()
