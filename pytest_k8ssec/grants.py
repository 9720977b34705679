"""Who grants a right: the bindings and roles, read from the RBAC objects, that allow a subject one request.

Pure: the objects come in as plain manifests (lists of dicts, as the API returns them), so the
matching is the RBAC authorizer's, written down and tested alone. A SubjectAccessReview says
*whether* a subject may; this says *which binding -> role* makes it so, for the failure line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .access import Question


@dataclass(frozen=True)
class Subject:
    """An identity as the authorizer sees it: a user name and its groups."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    """One binding and the role it binds, which together allow the request."""

    binding_kind: str
    binding: str       # name, with its namespace for a RoleBinding: ns/name
    role_kind: str
    role: str

    def __str__(self) -> str:
        return f"{self.binding_kind} {self.binding} -> {self.role_kind} {self.role}"


def binds(binding: Mapping[str, Any], subject: Subject) -> bool:
    """Whether one of the binding's subjects is the user, one of its groups, or (as a user name) its service account."""
    for s in binding.get("subjects") or []:
        kind, name = s.get("kind"), s.get("name")
        if kind == "User" and name == subject.user or kind == "Group" and name in subject.groups:
            return True
        if kind == "ServiceAccount":
            namespace = s.get("namespace") or binding["metadata"].get("namespace")
            if subject.user == f"system:serviceaccount:{namespace}:{name}":
                return True
    return False


def rule_allows(rule: Mapping[str, Any], req: Question) -> bool:
    """The authorizer's rule match: verbs, apiGroups, resources (with `*` and `*/sub`) and resourceNames."""
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    if not ("*" in verbs or req.verb in verbs) or not ("*" in groups or req.group in groups):
        return False
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    if not ("*" in resources or combined in resources or req.subresource and f"*/{req.subresource}" in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or req.name in names


def granting(req: Question, subject: Subject, cluster_roles: Iterable[Mapping[str, Any]], roles: Iterable[Mapping[str, Any]],
             cluster_bindings: Iterable[Mapping[str, Any]], bindings: Iterable[Mapping[str, Any]]) -> list[Grant]:
    """Every binding -> role that allows `subject` the request.

    ClusterRoleBindings grant everywhere; a RoleBinding only in its own namespace, so none grants
    a request for every namespace at once (namespace "") or a cluster-scoped one (None).
    """
    cluster_rules = {r["metadata"]["name"]: r.get("rules") or [] for r in cluster_roles}
    role_rules = {(r["metadata"]["namespace"], r["metadata"]["name"]): r.get("rules") or [] for r in roles}
    found = []
    candidates = [("ClusterRoleBinding", b) for b in cluster_bindings]
    if req.namespace:
        candidates += [("RoleBinding", b) for b in bindings if b["metadata"].get("namespace") == req.namespace]
    for kind, b in candidates:
        if not binds(b, subject):
            continue
        ref, namespace = b["roleRef"], b["metadata"].get("namespace")
        rules = cluster_rules.get(ref["name"]) if ref["kind"] == "ClusterRole" else role_rules.get((namespace, ref["name"]))
        if any(rule_allows(rule, req) for rule in rules or []):
            name = f"{namespace}/{b['metadata']['name']}" if kind == "RoleBinding" else b["metadata"]["name"]
            role = ref["name"] if ref["kind"] == "ClusterRole" else f"{namespace}/{ref['name']}"
            found.append(Grant(kind, name, ref["kind"], role))
    return found


def namespaces_binding(subject: Subject, bindings: Iterable[Mapping[str, Any]]) -> set[str]:
    """The namespaces where a RoleBinding names the subject: the only ones whose RBAC answers may differ from the rest."""
    return {b["metadata"]["namespace"] for b in bindings if binds(b, subject)}
