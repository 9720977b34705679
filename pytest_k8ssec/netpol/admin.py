"""Cluster-scoped network policies read as the tiers around NetworkPolicy, so expected tables can model them.

Sources (sigs.k8s.io/network-policy-api): v0.1.5 apis/v1alpha1 (AdminNetworkPolicy,
BaselineAdminNetworkPolicy; Calico v3.31.3 ships the same fields, bundle v0.1.1) and v0.3.0
apis/v1alpha2 (ClusterNetworkPolicy; v1beta1 has the same fields), with site-src/api-overview.md
and conformance/base/api_integration/standard-anp-np-banp.yaml. Per direction: the Admin tier's
first matching rule (lower priority first, then rule order) decides, Pass hands the direction on;
then NetworkPolicy, if one selects the pod for that direction; then the Baseline tier; else allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from ..errors import K8sSecError
from .model import EGRESS, INGRESS, Model, Pod, Port, selector_matches

GROUP = "policy.networking.k8s.io"
ADMIN, BASELINE = "Admin", "Baseline"
ALLOW, DENY, PASS = "Allow", "Deny", "Pass"
_KINDS = {  # (apiVersion, kind) -> tier (None: read from spec.tier), actions and their meaning
    (f"{GROUP}/v1alpha1", "AdminNetworkPolicy"): (ADMIN, {ALLOW: ALLOW, DENY: DENY, PASS: PASS}),
    (f"{GROUP}/v1alpha1", "BaselineAdminNetworkPolicy"): (BASELINE, {ALLOW: ALLOW, DENY: DENY}),
    (f"{GROUP}/v1alpha2", "ClusterNetworkPolicy"): (None, {"Accept": ALLOW, DENY: DENY, PASS: PASS}),
    (f"{GROUP}/v1beta1", "ClusterNetworkPolicy"): (None, {"Accept": ALLOW, DENY: DENY, PASS: PASS}),
}
_SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}


@dataclass(frozen=True)
class _Peer:
    """A subject or peer: pods matching `pods` in namespaces matching `namespaces` (empty: all)."""

    namespaces: Mapping[str, Any]
    pods: Mapping[str, Any]

    def matches(self, pod: Pod, model: Model) -> bool:
        return (selector_matches(self.namespaces, model.namespace_labels(pod.namespace))
                and selector_matches(self.pods, pod.labels))


@dataclass(frozen=True)
class _PortMatch:
    """A port, a range, or a container port name resolved on the destination."""

    protocol: str
    start: int = 1
    end: int = 65535
    name: str | None = None

    def matches(self, destination: Pod, port: Port) -> bool:
        if self.name is not None:
            return destination.port_named(self.name) == port
        return port.protocol == self.protocol and self.start <= port.number <= self.end


@dataclass(frozen=True)
class _Rule:
    action: str  # ALLOW, DENY or PASS (ClusterNetworkPolicy's Accept read as ALLOW)
    peers: tuple[_Peer, ...]
    ports: tuple[_PortMatch, ...]  # empty: every port


@dataclass(frozen=True)
class ClusterPolicy:
    """One cluster-scoped policy, read once: its tier, priority, subject and rules per direction."""

    kind: str
    name: str
    tier: str
    priority: int
    subject: _Peer
    rules: Mapping[str, tuple[_Rule, ...]]

    @property
    def label(self) -> str:
        """"AdminNetworkPolicy/name", as errors and the report name it."""
        return f"{self.kind}/{self.name}"

    def first_match(self, direction: str, subject: Pod, peer: Pod, destination: Pod, port: Port,
                    model: Model) -> str | None:
        """The action of the first rule matching this traffic (rules are ordered), None if none does."""
        if not self.subject.matches(subject, model):
            return None
        for rule in self.rules[direction]:
            if (any(p.matches(peer, model) for p in rule.peers)
                    and (not rule.ports or any(m.matches(destination, port) for m in rule.ports))):
                return rule.action
        return None


def read(manifests: Sequence[Mapping[str, Any]]) -> tuple[ClusterPolicy, ...]:
    """Cluster-scoped policy manifests, checked; a tier mixing API generations has no defined order."""
    policies = tuple(_read(m) for m in manifests)
    for tier in (ADMIN, BASELINE):
        kinds = {p.kind for p in policies if p.tier == tier}
        if len(kinds) > 1:
            raise K8sSecError(f"{tier} tier: {' and '.join(sorted(kinds))} together have no order defined by "
                              f"the API; model the cluster with one of them")
    return policies


def _read(manifest: Mapping[str, Any]) -> ClusterPolicy:
    meta, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
    kind, name = manifest.get("kind"), meta.get("name", "?")
    known = _KINDS.get((manifest.get("apiVersion"), kind))
    if known is None:
        raise K8sSecError(f"{name}: expected a {GROUP} AdminNetworkPolicy, BaselineAdminNetworkPolicy (v1alpha1) or "
                          f"ClusterNetworkPolicy (v1alpha2, v1beta1), got {manifest.get('apiVersion')} {kind}")
    label = f"{kind}/{name}"
    tier, actions = known
    if kind == "BaselineAdminNetworkPolicy" and name != "default":
        raise K8sSecError(f"{label}: the API only admits the singleton named default")
    tier = tier or spec.get("tier")
    if tier not in (ADMIN, BASELINE):
        raise K8sSecError(f"{label}: spec.tier must be Admin or Baseline, got {tier!r}")
    ports_field = "protocols" if kind == "ClusterNetworkPolicy" else "ports"
    rules = {d: tuple(_rule(r, f"{d.lower()} rule {r.get('name') or i + 1}", label, d, actions, ports_field)
                      for i, r in enumerate(spec.get(d.lower()) or ()))
             for d in (INGRESS, EGRESS)}
    return ClusterPolicy(kind, name, tier, int(spec.get("priority", 0)), _peer(spec.get("subject"), label, "subject"),
                         rules)


def _rule(rule: Mapping[str, Any], where: str, label: str, direction: str, actions: Mapping[str, str],
          ports_field: str) -> _Rule:
    """One rule; `where` names it (its name, or its 1-based position) in errors."""
    peers_field = "from" if direction == INGRESS else "to"
    unknown = set(rule) - {"name", "action", peers_field, ports_field}
    if unknown:
        raise NotImplementedError(f"{label}: {where} field(s) {', '.join(sorted(unknown))} not modelled by the "
                                  f"expected truth table")
    if rule.get("action") not in actions:
        raise K8sSecError(f"{label}: {where} action must be one of {', '.join(actions)}, got {rule.get('action')!r}")
    peers = tuple(_peer(p, label, f"{where} {peers_field}") for p in rule.get(peers_field) or ())
    if not peers:
        raise K8sSecError(f"{label}: {where} needs at least one peer in {peers_field}")
    read_port = _cnp_port if ports_field == "protocols" else _anp_port
    ports = tuple(read_port(p, label, f"{where} {ports_field}") for p in rule.get(ports_field) or ())
    return _Rule(actions[rule["action"]], peers, ports)


def _peer(peer: Mapping[str, Any] | None, label: str, where: str) -> _Peer:
    """Exactly one of namespaces (every pod there) or pods {namespaceSelector, podSelector}."""
    peer = peer or {}
    unmodelled = set(peer) - {"namespaces", "pods"}
    if unmodelled:
        raise NotImplementedError(f"{label}: {where}: {', '.join(sorted(unmodelled))} peers are not modelled by the "
                                  f"expected truth table; use namespaces/pods peers")
    if len(peer) != 1:
        raise K8sSecError(f"{label}: {where} needs exactly one of namespaces or pods, got {dict(peer)}")
    if "namespaces" in peer:
        return _Peer(_selector(peer["namespaces"], label, f"{where} namespaces"), {})
    pods = peer["pods"] or {}
    return _Peer(_selector(pods.get("namespaceSelector"), label, f"{where} pods.namespaceSelector"),
                 _selector(pods.get("podSelector"), label, f"{where} pods.podSelector"))


def _selector(selector: Mapping[str, Any] | None, label: str, where: str) -> Mapping[str, Any]:
    """A LabelSelector; early API fields such as sameLabels/notSameLabels are refused by name."""
    selector = selector or {}
    unmodelled = set(selector) - _SELECTOR_FIELDS
    if unmodelled:
        raise NotImplementedError(f"{label}: {where}: {', '.join(sorted(unmodelled))} not modelled by the expected "
                                  f"truth table; use matchLabels/matchExpressions")
    return selector


def _anp_port(entry: Mapping[str, Any], label: str, where: str) -> _PortMatch:
    """v1alpha1: portNumber {protocol, port}, namedPort, or portRange {protocol, start, end}; TCP by default."""
    if "portNumber" in entry:
        number = entry["portNumber"]
        return _PortMatch(number.get("protocol") or "TCP", number["port"], number["port"])
    if "namedPort" in entry:
        return _PortMatch("TCP", name=entry["namedPort"])
    if "portRange" in entry:
        span = entry["portRange"]
        return _PortMatch(span.get("protocol") or "TCP", span["start"], span["end"])
    raise K8sSecError(f"{label}: {where} entry needs portNumber, namedPort or portRange, got {dict(entry)}")


def _cnp_port(entry: Mapping[str, Any], label: str, where: str) -> _PortMatch:
    """v1alpha2: {tcp|udp|sctp: {destinationPort: {number} or {range}}} (no port: all of it) or destinationNamedPort."""
    if "destinationNamedPort" in entry:
        return _PortMatch("TCP", name=entry["destinationNamedPort"])
    for protocol in ("tcp", "udp", "sctp"):
        if protocol in entry:
            port = (entry[protocol] or {}).get("destinationPort") or {}
            if "range" in port:
                return _PortMatch(protocol.upper(), port["range"]["start"], port["range"]["end"])
            if "number" in port:
                return _PortMatch(protocol.upper(), port["number"], port["number"])
            return _PortMatch(protocol.upper())
    raise K8sSecError(f"{label}: {where} entry needs tcp, udp, sctp or destinationNamedPort, got {dict(entry)}")


def _decide(policies: Sequence[ClusterPolicy], tier: str, direction: str, subject: Pod, peer: Pod,
           destination: Pod, port: Port, model: Model) -> tuple[str, tuple[str, ...]] | None:
    """The tier's verdict for one direction: the first matching rule's action and its policies, None if none matched.

    Policies of equal priority that match with different actions are an error: the API lets the
    implementation pick either.
    """
    ranked = sorted((p for p in policies if p.tier == tier), key=lambda p: (p.priority, p.label))
    for priority, group in groupby(ranked, key=lambda p: p.priority):
        matched = {p.label: a for p in group
                   if (a := p.first_match(direction, subject, peer, destination, port, model)) is not None}
        if len(set(matched.values())) > 1:
            raise K8sSecError(f"{subject.short} {direction.lower()} with {peer.short} port {port}: "
                              f"{', '.join(f'{k} {v}' for k, v in matched.items())} at the same priority "
                              f"{priority}: the API leaves the outcome to the implementation; give them "
                              f"different priorities")
        if matched:
            return next(iter(matched.values())), tuple(matched)
    return None


def tiers(policies: Sequence[ClusterPolicy], direction: str, subject: Pod, peer: Pod, destination: Pod, port: Port,
          model: Model, network_policy: bool | None) -> tuple[bool, tuple[str, ...]]:
    """One direction through the tiers: whether it is allowed and the cluster-scoped policies that decided.

    `network_policy` is the NetworkPolicy verdict, None where no NetworkPolicy selects `subject`
    for this direction. Pass (Admin) hands the direction on; Pass in the Baseline tier leaves it
    to the default, allowed.
    """
    admin = _decide(policies, ADMIN, direction, subject, peer, destination, port, model)
    if admin and admin[0] != PASS:
        return admin[0] == ALLOW, admin[1]
    if network_policy is not None:
        return network_policy, ()
    baseline = _decide(policies, BASELINE, direction, subject, peer, destination, port, model)
    if baseline and baseline[0] != PASS:
        return baseline[0] == ALLOW, baseline[1]
    return True, ()
