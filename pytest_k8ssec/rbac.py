"""RBAC objects as plain manifests: roles, bindings and their subjects, built in one place."""

from __future__ import annotations

from typing import Any

API_VERSION = "rbac.authorization.k8s.io/v1"
GROUP = "rbac.authorization.k8s.io"


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    """A Role in `namespace`, or a ClusterRole without one."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": "Role" if namespace else "ClusterRole", "metadata": meta, "rules": rules}


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, str]],
            namespace: str | None = None) -> dict[str, Any]:
    """A RoleBinding in `namespace`, or a ClusterRoleBinding without one."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name}, "subjects": subjects}


def verbs_to_ask(rule: dict[str, Any]) -> list[str]:
    """The verbs a check of `rule` asks about: each it lists, or `create` for a wildcard."""
    return ["create"] if "*" in rule["verbs"] else list(rule["verbs"])


def use_rule(policy: str) -> dict[str, Any]:
    """`use` of one named policy, the grant PSP clusters understood (group policy, resource podsecuritypolicies)."""
    return {"apiGroups": ["policy"], "resources": ["podsecuritypolicies"], "verbs": ["use"], "resourceNames": [policy]}


def group(name: str) -> dict[str, str]:
    return {"apiGroup": GROUP, "kind": "Group", "name": name}


def user(name: str) -> dict[str, str]:
    return {"apiGroup": GROUP, "kind": "User", "name": name}


def service_account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
