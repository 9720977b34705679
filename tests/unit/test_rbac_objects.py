"""RBAC objects and what a check of a role asks."""

from pytest_k8ssec import rbac


def test_a_wildcard_rule_is_asked_with_create_and_a_listed_one_with_each_verb():
    assert rbac.verbs_to_ask({"verbs": ["*"], "resources": ["pods"]}) == ["create"]
    assert rbac.verbs_to_ask({"verbs": ["get", "list"], "resources": ["pods"]}) == ["get", "list"]


def test_a_binding_in_a_namespace_is_a_rolebinding_and_without_one_a_clusterrolebinding():
    assert rbac.binding("b", "ClusterRole", "view", [rbac.group("g")], "ns")["kind"] == "RoleBinding"
    assert rbac.binding("b", "ClusterRole", "view", [rbac.user("u")])["kind"] == "ClusterRoleBinding"
