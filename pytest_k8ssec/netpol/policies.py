"""NetworkPolicy manifests (networking.k8s.io/v1) for the seed's steps and the wider matrix.

`ns` is always the real namespace name (`Model.real_name(key)`); `labels` is the run label the
caller passes, so teardown finds every policy. Egress policies may block DNS: probes use IPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Manifest = dict[str, Any]


def _selector(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(labels)} if labels else {}


def _ports(ports: Sequence[int | str]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _policy(name: str, ns: str, labels: Mapping[str, str], target_labels: Mapping[str, str], policy_types: list[str],
            *, ingress: list[dict[str, Any]] | None = None, egress: list[dict[str, Any]] | None = None) -> Manifest:
    spec: dict[str, Any] = {"podSelector": _selector(target_labels), "policyTypes": policy_types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels)}, "spec": spec}


def default_deny_ingress(ns: str, *, labels: Mapping[str, str], name: str = "default-deny") -> Manifest:
    """Seed step 6: every pod in `ns` is isolated for ingress and nothing is allowed in."""
    return _policy(name, ns, labels, {}, ["Ingress"])


def allow_from_pod_selector(ns: str, target_labels: Mapping[str, str], peer_labels: Mapping[str, str], *,
                            labels: Mapping[str, str], name: str = "access-nginx") -> Manifest:
    """Seed step 8: ingress to `target_labels` from pods with `peer_labels` in the policy's own namespace."""
    return _policy(name, ns, labels, target_labels, ["Ingress"],
                   ingress=[{"from": [{"podSelector": _selector(peer_labels)}]}])


def allow_from_pod_and_namespace_selector(ns: str, target_labels: Mapping[str, str], peer_labels: Mapping[str, str],
                                          namespace_labels: Mapping[str, str], *, labels: Mapping[str, str],
                                          name: str = "access-nginx") -> Manifest:
    """Seed step 10: two peers (OR): pods with `peer_labels` here, or any pod in a namespace with `namespace_labels`."""
    return _policy(name, ns, labels, target_labels, ["Ingress"],
                   ingress=[{"from": [{"podSelector": _selector(peer_labels)},
                                      {"namespaceSelector": _selector(namespace_labels)}]}])


def allow_from_peers(ns: str, target_labels: Mapping[str, str], peers: Sequence[Mapping[str, Any]], *,
                     labels: Mapping[str, str], name: str = "allow-from-peers") -> Manifest:
    """Ingress to `target_labels` from any of `peers` (NetworkPolicyPeer objects, as written)."""
    return _policy(name, ns, labels, target_labels, ["Ingress"], ingress=[{"from": [dict(p) for p in peers]}])


def deny_all_egress(ns: str, *, labels: Mapping[str, str], target_labels: Mapping[str, str] | None = None,
                    name: str = "deny-egress") -> Manifest:
    """Selected pods (all pods in `ns` by default) may send nothing, DNS included."""
    return _policy(name, ns, labels, target_labels or {}, ["Egress"])


def allow_egress_to(ns: str, target_labels: Mapping[str, str], *, labels: Mapping[str, str],
                    to_pods: Mapping[str, str] | None = None, to_namespaces: Mapping[str, str] | None = None,
                    ports: Sequence[int | str] = (), name: str = "allow-egress") -> Manifest:
    """Egress from `target_labels` to one peer; given both selectors, the peer needs both (AND).

    `to_pods` alone selects in `ns`; `to_namespaces` alone selects every pod of matching
    namespaces; no `ports` means every port.
    """
    if to_pods is None and to_namespaces is None:
        raise ValueError("allow_egress_to needs to_pods, to_namespaces or both")
    peer: dict[str, Any] = {}
    if to_pods is not None:
        peer["podSelector"] = _selector(to_pods)
    if to_namespaces is not None:
        peer["namespaceSelector"] = _selector(to_namespaces)
    rule: dict[str, Any] = {"to": [peer]}
    if ports:
        rule["ports"] = _ports(ports)
    return _policy(name, ns, labels, target_labels, ["Egress"], egress=[rule])


def allow_named_port(ns: str, target_labels: Mapping[str, str], port_name: str, *, labels: Mapping[str, str],
                     name: str = "allow-named-port") -> Manifest:
    """Ingress to `target_labels` from anywhere, but only on the container port named `port_name`."""
    return _policy(name, ns, labels, target_labels, ["Ingress"], ingress=[{"ports": _ports([port_name])}])


def allow_all(ns: str, *, labels: Mapping[str, str], name: str = "allow-all") -> Manifest:
    """Every pod in `ns` isolated both ways and everything allowed: what a NetworkPolicy may open under a baseline deny."""
    return _policy(name, ns, labels, {}, ["Ingress", "Egress"], ingress=[{}], egress=[{}])


# Cluster-scoped policies (policy.networking.k8s.io/v1alpha1) of the admin-tier cases. Namespaces are named by the
# API server's name label, so a case's policies touch only the lab's namespaces.
ANP_VERSION = "policy.networking.k8s.io/v1alpha1"


def _named(namespaces: Sequence[str]) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]}


def admin_network_policy(name: str, priority: int, ns: str, target_labels: Mapping[str, str],
                         ingress: Sequence[tuple[str, Sequence[str]]], *, labels: Mapping[str, str]) -> Manifest:
    """An AdminNetworkPolicy on the `target_labels` pods of `ns`; each ingress rule is (action, namespaces it is from)."""
    return {"apiVersion": ANP_VERSION, "kind": "AdminNetworkPolicy", "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"priority": priority,
                     "subject": {"pods": {"namespaceSelector": _named([ns]), "podSelector": _selector(target_labels)}},
                     "ingress": [{"name": f"{action.lower()}-{i}", "action": action,
                                  "from": [{"namespaces": _named(sources)}]} for i, (action, sources) in enumerate(ingress)]}}


def baseline_deny(namespaces: Sequence[str] = (), *, egress: bool = False, labels: Mapping[str, str] | None = None) -> Manifest:
    """The BaselineAdminNetworkPolicy (a singleton, named default) denying ingress to every pod of `namespaces` (none
    given: of every namespace) from anywhere, and with `egress` their egress to anywhere too."""
    spec: dict[str, Any] = {"subject": {"namespaces": _named(namespaces) if namespaces else {}},
                            "ingress": [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}]}
    if egress:
        spec["egress"] = [{"name": "deny-all", "action": "Deny", "to": [{"namespaces": {}}]}]
    return {"apiVersion": ANP_VERSION, "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default", "labels": dict(labels or {})}, "spec": spec}
