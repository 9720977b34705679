"""RBAC-6's planning and attribution, with a fake authorizer: who is asked what where, and how a yes is named."""

import yaml

from pytest_k8ssec.access import Question
from pytest_k8ssec.escalation import RbacObjects, asks, escalations, subject_classes
from pytest_k8ssec.profile import load_profile, parse_profile

PROFILE = load_profile()
POD = Question("create", "", "pods", namespace="")
NODES_PROXY = Question("get", "", "nodes", "proxy")


def _case(label):
    return next(c for c in PROFILE.escalation.questions if c.label == label)


QUESTIONS = [(_case("create pods in other"), POD), (_case("get nodes/proxy in cluster"), NODES_PROXY)]


def _objects(cluster_bindings=(), bindings=()):
    edit = {"metadata": {"name": "edit"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]}
    return RbacObjects([edit], [], list(cluster_bindings), list(bindings))


def _binding(name, subject, namespace=None):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": [subject]}


def test_a_default_account_is_its_own_class_only_where_a_binding_names_it():
    objects = _objects(bindings=[_binding("app", {"kind": "ServiceAccount", "name": "default", "namespace": "shop"}, "shop")])
    classes = subject_classes("alice", ["developers"], "tenant", ["default", "shop"], objects)
    assert [c.key for c in classes] == ["anonymous", "authenticated", "service_accounts", "user", "default_service_accounts"]
    shop = classes[-1]
    assert shop.own_namespace == "shop" and shop.namespaced_only
    # only in its bound namespace, and not "create pods in other" there: that is its own namespace
    assert asks(shop, QUESTIONS, {"default", "shop"}, objects) == []
    anyone = classes[0]
    assert [q.namespace for _, q in asks(anyone, QUESTIONS, {"default", "shop"}, objects)] == ["", None]


def test_a_yes_names_the_binding_once_under_the_broadest_class_it_binds():
    everyone = _binding("sa-edit", {"kind": "Group", "name": "system:serviceaccounts"})
    objects = _objects(cluster_bindings=[everyone],
                       bindings=[_binding("app", {"kind": "ServiceAccount", "name": "default", "namespace": "shop"}, "shop")])
    classes = subject_classes("alice", ["developers"], "tenant", ["default", "shop"], objects)

    def ask(q, cls):  # the authorizer: every service account may create pods anywhere
        return q.resource == "pods" and "system:serviceaccounts" in cls.subject.groups
    asked, findings = escalations(ask, classes, QUESTIONS, {"default", "shop"}, objects, PROFILE.escalation)
    assert asked == 8
    assert [str(f) for f in findings] == [
        "every service account (system:serviceaccounts) may create pods in every namespace: ClusterRoleBinding sa-edit -> ClusterRole edit"]


def test_what_the_profile_grants_a_class_is_not_asked_and_a_yes_no_binding_explains_is_still_reported():
    profile = parse_profile({**yaml.safe_load(open(PROFILE.path).read()), "escalation": {
        "questions": ["create pods in other", "get nodes/proxy in cluster"],
        "subjects": {"user": [], "service_accounts": ["create pods in other"], "default_service_accounts": [],
                     "authenticated": [], "anonymous": []}}})
    assert profile.escalation.allowed("service_accounts", _case("create pods in other"))
    objects = _objects()
    classes = subject_classes("alice", ["developers"], "tenant", [], objects)
    asked, findings = escalations(lambda q, cls: cls.key == "anonymous" and q.subresource == "proxy", classes, QUESTIONS, set(),
                                  objects, profile.escalation)
    assert asked == 7
    assert [str(f) for f in findings] == ["a request without credentials (system:anonymous) may get nodes/proxy at cluster scope: "
                                          "no RBAC binding (another authorizer answered yes)"]

