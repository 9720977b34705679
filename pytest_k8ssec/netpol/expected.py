"""The truth table Kubernetes NetworkPolicy semantics predict for a model and a set of policies.

The rules (networking.k8s.io/v1): a pod is isolated for a direction when a policy in its
namespace selects it with that policy type; isolated pods accept only what some selecting
policy's rule allows; traffic flows iff the source's egress and the destination's ingress
both allow it. Policies are additive: there is no deny rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import K8sSecError
from .model import EGRESS, INGRESS, Model, Pod, Port, selector_matches
from .truthtable import Outcome, TruthTable

_PEERS = {INGRESS: "from", EGRESS: "to"}
_RULES = {INGRESS: "ingress", EGRESS: "egress"}


@dataclass(frozen=True)
class _Policy:
    """A NetworkPolicy manifest read once: its namespace key, selector, types and rules."""

    namespace: str
    pod_selector: Mapping[str, Any]
    types: frozenset[str]
    rules: Mapping[str, Sequence[Mapping[str, Any]]]

    @classmethod
    def read(cls, manifest: Mapping[str, Any], model: Model) -> _Policy:
        meta, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
        name = meta.get("name", "?")
        if manifest.get("kind") != "NetworkPolicy" or manifest.get("apiVersion") != "networking.k8s.io/v1":
            raise K8sSecError(f"{name}: expected a networking.k8s.io/v1 NetworkPolicy, got "
                              f"{manifest.get('apiVersion')} {manifest.get('kind')}")
        if "namespace" not in meta:
            raise K8sSecError(f"NetworkPolicy {name} has no metadata.namespace: its pod selectors would be ambiguous")
        # API defaulting: Ingress always, Egress when the policy has egress rules.
        types = spec.get("policyTypes") or [INGRESS] + ([EGRESS] if spec.get("egress") else [])
        rules = {d: tuple(spec.get(_RULES[d]) or ()) for d in (INGRESS, EGRESS)}
        peers = [peer for d in (INGRESS, EGRESS) for rule in rules[d] for peer in rule.get(_PEERS[d]) or ()]
        for peer in peers:
            if "ipBlock" in peer:
                raise NotImplementedError(f"NetworkPolicy {name}: ipBlock peers are not modelled by the expected "
                                          f"truth table; use podSelector/namespaceSelector peers")
            if "podSelector" not in peer and "namespaceSelector" not in peer:
                raise K8sSecError(f"NetworkPolicy {name}: a peer needs podSelector or namespaceSelector, got {peer}")
        return cls(model.key_of(meta["namespace"]), spec.get("podSelector") or {}, frozenset(types), rules)

    def selects(self, pod: Pod, direction: str) -> bool:
        if direction not in self.types or pod.namespace != self.namespace:
            return False
        return selector_matches(self.pod_selector, pod.labels)


def _peer_matches(peer: Mapping[str, Any], policy: _Policy, pod: Pod, model: Model) -> bool:
    """podSelector alone: the policy's namespace; namespaceSelector: matching namespaces; both: AND."""
    if "namespaceSelector" in peer:
        in_scope = selector_matches(peer["namespaceSelector"], model.namespace_labels(pod.namespace))
    else:
        in_scope = pod.namespace == policy.namespace
    return in_scope and selector_matches(peer.get("podSelector"), pod.labels)


def _port_matches(entry: Mapping[str, Any], destination: Pod, port: Port) -> bool:
    """By number (with optional endPort) or by name, resolved against the destination's container ports."""
    protocol = entry.get("protocol", "TCP")
    if protocol != port.protocol:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, int):
        return wanted <= port.number <= entry.get("endPort", wanted)
    named = destination.port_named(wanted)
    return named is not None and (named.number, named.protocol) == (port.number, protocol)


def _direction_allows(policies: Sequence[_Policy], direction: str, subject: Pod, peer: Pod, destination: Pod,
                      port: Port, model: Model) -> bool:
    selecting = [p for p in policies if p.selects(subject, direction)]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in policy.rules[direction]:
            peers, ports = rule.get(_PEERS[direction]) or (), rule.get("ports") or ()
            if ((not peers or any(_peer_matches(x, policy, peer, model) for x in peers))
                    and (not ports or any(_port_matches(e, destination, port) for e in ports))):
                return True
    return False


def allowed(model: Model, policies: Sequence[Mapping[str, Any]], source: Pod, destination: Pod, port: Port) -> bool:
    """Whether `source` may open `port` on `destination`; a pod may always reach itself."""
    return _allowed([_Policy.read(p, model) for p in policies], model, source, destination, port)


def _allowed(policies: Sequence[_Policy], model: Model, source: Pod, destination: Pod, port: Port) -> bool:
    if source == destination:
        return True
    return (_direction_allows(policies, EGRESS, source, destination, destination, port, model)
            and _direction_allows(policies, INGRESS, destination, source, destination, port, model))


def expected_table(model: Model, policies: Sequence[Mapping[str, Any]]) -> TruthTable:
    """Every pod to every target and port it serves, except a pod to itself (also through a Service).

    A Service cell is the outcome for its backends, which must agree: kube-proxy picks one at random.
    """
    read = [_Policy.read(p, model) for p in policies]
    targets = model.targets()
    table = TruthTable([p.short for p in model.pods], [t.short for t in targets], list(model.ports))
    for source in model.pods:
        for target in targets:
            backends = model.backends(target)
            if source in backends:
                continue
            for port in model.target_ports(target):
                outcomes = {_allowed(read, model, source, b, port) for b in backends if port in b.ports}
                if len(outcomes) > 1:
                    raise K8sSecError(f"{source.short} -> {target.short} port {port}: the backends disagree, so the "
                                      f"outcome depends on which one kube-proxy picks; give them the same labels")
                table.set(source.short, target.short, port, Outcome.ALLOWED if outcomes.pop() else Outcome.BLOCKED)
    return table
