"""Negative controls of RBAC-6 (escalation by any class of subject) and of RBAC-5's blame.

Each control makes ONE grant on the real local cluster (cluster-scoped, labelled with the test's
run so it is removed; or a RoleBinding in `default`, which no run labels, deleted after) and
asserts RBAC-6 fails naming the subject, the question and the granting binding and role.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from pytest_k8ssec import rbac

from controls import certified, failed

RBAC6 = "test_no_subject_class_holds_an_escalation_right"
USER = "the certificate user alice (groups mirantis, developers)"
CSR_APPROVAL = [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
                {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
                 "resourceNames": ["kubernetes.io/kube-apiserver-client"]}]
ADMISSION = [{"apiGroups": ["admissionregistration.k8s.io"],
              "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingwebhookconfigurations"],
              "verbs": ["create", "update"]}]
NODE_PROXY = [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]
PERSISTENT_VOLUMES = [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["create"]}]

# (id, rules of the run's ClusterRole or an existing ClusterRole's name, subject, lines RBAC-6 must print)
GRANTS = [
    ("developers-approve-csrs", CSR_APPROVAL, rbac.group("developers"),
     [f"*{USER} may update certificatesigningrequests/approval at cluster scope: ClusterRoleBinding {{name}} -> ClusterRole {{name}}*",
      f"*{USER} may approve signers kubernetes.io/kube-apiserver-client at cluster scope: ClusterRoleBinding {{name}} -> ClusterRole {{name}}*"]),
    ("developers-admission-policies", ADMISSION, rbac.group("developers"),
     [f"*{USER} may update mutatingwebhookconfigurations at cluster scope: ClusterRoleBinding {{name}} -> ClusterRole {{name}}*",
      f"*{USER} may create validatingadmissionpolicies at cluster scope: ClusterRoleBinding {{name}} -> ClusterRole {{name}}*"]),
    ("service-accounts-edit", "edit", rbac.group("system:serviceaccounts"),
     ["*every service account (system:serviceaccounts) may create pods in every namespace: ClusterRoleBinding {name} -> ClusterRole edit*",
      "*every service account (system:serviceaccounts) may create serviceaccounts/token in every namespace: "
      "ClusterRoleBinding {name} -> ClusterRole edit*"]),
    ("authenticated-node-proxy", NODE_PROXY, rbac.group("system:authenticated"),
     ["*every authenticated user (system:authenticated) may get nodes/proxy at cluster scope: "
      "ClusterRoleBinding {name} -> ClusterRole {name}*"]),
    ("anonymous-persistent-volumes", PERSISTENT_VOLUMES, rbac.user("system:anonymous"),
     ["*a request without credentials (system:anonymous) may create persistentvolumes at cluster scope: "
      "ClusterRoleBinding {name} -> ClusterRole {name}*"]),
]


WHO = {"user": USER, "service_accounts": "every service account (system:serviceaccounts)",
       "authenticated": "every authenticated user (system:authenticated)",
       "anonymous": "a request without credentials (system:anonymous)"}
SUBJECTS = {"user": rbac.group("developers"), "service_accounts": rbac.group("system:serviceaccounts"),
            "authenticated": rbac.group("system:authenticated"), "anonymous": rbac.user("system:anonymous")}


def one_rule(what: str, group: str, resource: str, verb: str, who: str, where: str) -> tuple:
    """A control granting a single verb on a single resource to one subject class, and the line RBAC-6 must print."""
    question = f"{verb} {resource}"
    return (what, [{"apiGroups": [group], "resources": [resource], "verbs": [verb]}], SUBJECTS[who],
            [f"*{WHO[who]} may {question} {where}: ClusterRoleBinding {{name}} -> ClusterRole {{name}}*"])


EVERYWHERE, CLUSTER = "in every namespace", "at cluster scope"
# One escalation permission each, spread over the subject classes; the grants above cover the rest of the list.
GRANTS += [
    one_rule("developers-read-secrets", "", "secrets", "get", "user", EVERYWHERE),
    one_rule("service-accounts-create-deployments", "apps", "deployments", "create", "service_accounts", EVERYWHERE),
    one_rule("authenticated-exec", "", "pods/exec", "create", "authenticated", EVERYWHERE),
    one_rule("anonymous-ephemeral-containers", "", "pods/ephemeralcontainers", "patch", "anonymous", EVERYWHERE),
    one_rule("developers-escalate", "rbac.authorization.k8s.io", "clusterroles", "escalate", "user", CLUSTER),
    one_rule("service-accounts-bind", "rbac.authorization.k8s.io", "clusterroles", "bind", "service_accounts", CLUSTER),
    one_rule("authenticated-impersonate", "", "users", "impersonate", "authenticated", CLUSTER),
    one_rule("developers-impersonate-service-accounts", "", "serviceaccounts", "impersonate", "user", EVERYWHERE),
    one_rule("anonymous-csrs", "certificates.k8s.io", "certificatesigningrequests", "create", "anonymous", CLUSTER),
    one_rule("developers-validating-webhooks", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "create",
             "user", CLUSTER),
    one_rule("service-accounts-mutating-policies", "admissionregistration.k8s.io", "mutatingadmissionpolicybindings",
             "update", "service_accounts", CLUSTER),
    one_rule("authenticated-patch-namespaces", "", "namespaces", "patch", "authenticated", CLUSTER),
    one_rule("developers-crds", "apiextensions.k8s.io", "customresourcedefinitions", "create", "user", CLUSTER),
    one_rule("anonymous-apiservices", "apiregistration.k8s.io", "apiservices", "update", "anonymous", CLUSTER),
    one_rule("service-accounts-tokens", "", "serviceaccounts/token", "create", "service_accounts", EVERYWHERE),
]


@pytest.mark.parametrize("grant", GRANTS, ids=[g[0] for g in GRANTS])
def test_one_escalation_grant_fails_rbac6_naming_the_subject_and_binding(suite, run, grant):
    what, role, subject, lines = grant
    name = run.name(what)  # the ClusterRole and ClusterRoleBinding, removed with the test's run
    if isinstance(role, list):
        run.create(rbac.role(name, role))
    run.create(rbac.binding(name, "ClusterRole", name if isinstance(role, list) else role, [subject]))
    behaviours = "RBAC-6,RBAC-5" if what == "service-accounts-edit" else "RBAC-6"
    result = suite(f"--k8s-sec-behaviours={behaviours}", "-v")
    # RBAC-5's dangling binding's service account may now list pods, through the grant to every service account:
    # not the dangling binding's doing, so RBAC-5 passes
    assert failed(result) == {RBAC6}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([line.format(name=name) for line in lines])  # in the order the case prints them
    if what == "service-accounts-edit":
        result.stdout.fnmatch_lines(["*test_dangling_binding_is_accepted_grants_nothing_and_is_found PASSED*"])
    assert result.ret == 1 and not certified(result)


def test_admin_to_a_namespaces_default_account_fails_rbac6_in_that_namespace_only(suite, admin, run):
    """A RoleBinding of `admin` to default/default: its secrets are an escalation, its own pods are not."""
    name = run.name("default-sa-admin")
    api = client.RbacAuthorizationV1Api(admin)
    api.create_namespaced_role_binding("default", rbac.binding(name, "ClusterRole", "admin",
                                                               [rbac.service_account("default", "default")], "default"))
    try:
        result = suite("--k8s-sec-behaviours=RBAC-6", "-v")
    finally:
        api.delete_namespaced_role_binding(name, "default")
    assert failed(result) == {RBAC6}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([f"*the default service account of default may get secrets in default: "
                                 f"RoleBinding default/{name} -> ClusterRole admin*"])
    assert "may create pods in default" not in result.stdout.str()  # its own namespace


def test_default_cluster_passes_rbac6(suite):
    result = suite("--k8s-sec-behaviours=RBAC-6,RBAC-5", "-v")
    assert result.ret == 0 and certified(result), result.stdout.str()[-3000:]
