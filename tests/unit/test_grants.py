"""Who grants a right: bindings matched by subject (user, group, service account), rules by verb, group, resource, name."""

from pytest_k8ssec.access import Question
from pytest_k8ssec.grants import Subject, binds, granting, namespaces_binding, rule_allows

SA = Subject("system:serviceaccount:team:default", ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"))
PODS = Question("create", "", "pods", namespace="team")


def _binding(name, role, subjects, namespace=None, role_kind="ClusterRole"):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"kind": role_kind, "name": role}, "subjects": subjects}


def _role(name, rules, namespace=None):
    return {"metadata": {"name": name, **({"namespace": namespace} if namespace else {})}, "rules": rules}


EDIT = _role("edit", [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["create", "get"]}])


def test_subjects_match_by_user_group_and_service_account():
    assert binds(_binding("b", "edit", [{"kind": "Group", "name": "system:serviceaccounts"}]), SA)
    assert binds(_binding("b", "edit", [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}]), SA)
    assert binds(_binding("b", "edit", [{"kind": "ServiceAccount", "name": "default"}], "team"), SA)  # the binding's namespace
    assert not binds(_binding("b", "edit", [{"kind": "ServiceAccount", "name": "default", "namespace": "other"}]), SA)
    assert not binds(_binding("b", "edit", [{"kind": "User", "name": "system:serviceaccounts"}]), SA)
    assert not binds(_binding("b", "edit", None), SA)


def test_rules_match_wildcards_subresources_and_resource_names():
    assert rule_allows({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, PODS)
    assert not rule_allows({"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["create"]}, PODS)
    assert not rule_allows({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
                           Question("create", "", "pods", "exec", "team"))
    assert rule_allows({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, Question("create", "", "pods", "exec", "team"))
    signer = Question("approve", "certificates.k8s.io", "signers", name="kubernetes.io/kube-apiserver-client")
    named = {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"]}
    assert rule_allows({**named, "resourceNames": ["kubernetes.io/kube-apiserver-client"]}, signer)
    assert not rule_allows({**named, "resourceNames": ["example.com/other"]}, signer)
    assert not rule_allows({**named, "resourceNames": ["x"]}, Question("approve", "certificates.k8s.io", "signers"))


def test_granting_names_each_binding_and_role_in_scope():
    cluster_bindings = [_binding("sa-edit", "edit", [{"kind": "Group", "name": "system:serviceaccounts"}]),
                        _binding("alice-edit", "edit", [{"kind": "User", "name": "alice"}])]
    bindings = [_binding("local", "pod-maker", [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}], "team", "Role"),
                _binding("elsewhere", "edit", [{"kind": "Group", "name": "system:serviceaccounts"}], "other")]
    roles = [_role("pod-maker", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "team")]
    grants = granting(PODS, SA, [EDIT], roles, cluster_bindings, bindings)
    assert [str(g) for g in grants] == ["ClusterRoleBinding sa-edit -> ClusterRole edit", "RoleBinding team/local -> Role team/pod-maker"]
    # every namespace at once: only ClusterRoleBindings answer
    assert [str(g) for g in granting(Question("create", "", "pods", namespace=""), SA, [EDIT], roles, cluster_bindings, bindings)] == [
        "ClusterRoleBinding sa-edit -> ClusterRole edit"]
    # a binding to a missing role grants nothing
    ghost = [_binding("ghost", "missing", [{"kind": "Group", "name": "system:serviceaccounts"}], "team", "Role")]
    assert granting(PODS, SA, [], [], [], ghost) == []


def test_namespaces_binding_are_those_whose_role_bindings_name_the_subject():
    bindings = [_binding("a", "edit", [{"kind": "Group", "name": "system:serviceaccounts:team"}], "x"),
                _binding("b", "edit", [{"kind": "Group", "name": "developers"}], "y")]
    assert namespaces_binding(SA, bindings) == {"x"}
