"""RBAC-5: bindings whose role or service-account subject does not exist.

The API server accepts such bindings (the coupling is loose) and they grant nothing, until
someone creates an object with that name: then they silently grant. Finding them is useful.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client


@dataclass(frozen=True)
class Dangling:
    binding: str      # Kind/namespace/name
    missing: str      # what it refers to that does not exist

    def __str__(self) -> str:
        return f"{self.binding} -> missing {self.missing}"


def dangling_references(api: client.ApiClient, namespace: str | None = None) -> list[Dangling]:
    """Dangling roleRefs and service-account subjects, in one namespace or the whole cluster."""
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    cluster_roles = {r.metadata.name for r in rbac.list_cluster_role().items}
    if namespace:
        roles = {(namespace, r.metadata.name) for r in rbac.list_namespaced_role(namespace).items}
        bindings = rbac.list_namespaced_role_binding(namespace).items
        accounts = {(namespace, sa.metadata.name) for sa in core.list_namespaced_service_account(namespace).items}
        cluster_bindings = []
    else:
        roles = {(r.metadata.namespace, r.metadata.name) for r in rbac.list_role_for_all_namespaces().items}
        bindings = rbac.list_role_binding_for_all_namespaces().items
        accounts = {(sa.metadata.namespace, sa.metadata.name) for sa in core.list_service_account_for_all_namespaces().items}
        cluster_bindings = rbac.list_cluster_role_binding().items
    namespaces = {ns.metadata.name for ns in core.list_namespace().items}
    found = []
    for b in [*bindings, *cluster_bindings]:
        ns = b.metadata.namespace
        where = f"RoleBinding/{ns}/{b.metadata.name}" if ns else f"ClusterRoleBinding/{b.metadata.name}"
        ref = b.role_ref
        exists = ref.name in cluster_roles if ref.kind == "ClusterRole" else (ns, ref.name) in roles
        if not exists:
            found.append(Dangling(where, f"{ref.kind} {ref.name}"))
        for s in b.subjects or []:
            if s.kind == "ServiceAccount":
                sa_ns = s.namespace or ns
                if sa_ns in namespaces and (sa_ns, s.name) not in accounts:
                    found.append(Dangling(where, f"ServiceAccount {sa_ns}/{s.name}"))
                elif sa_ns not in namespaces:
                    found.append(Dangling(where, f"ServiceAccount {sa_ns}/{s.name} (namespace missing)"))
    return found
