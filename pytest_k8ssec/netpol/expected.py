"""The truth table Kubernetes NetworkPolicy semantics predict for a model and a set of policies.

The rules (networking.k8s.io/v1): a pod is isolated for a direction when a policy in its
namespace selects it with that policy type; isolated pods accept only what some selecting
policy's rule allows; traffic flows iff the source's egress and the destination's ingress
both allow it. Policies are additive: there is no deny rule.

Cluster-scoped policies (netpol/admin.py) sit around them per direction: the Admin tier
decides first, NetworkPolicy next for the pods it isolates, the Baseline tier last.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import K8sSecError
from . import admin
from .model import EGRESS, INGRESS, Model, Pod, Port, Target, selector_matches
from .truthtable import Key, Outcome, TruthTable

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


def _network_policy(policies: Sequence[_Policy], direction: str, subject: Pod, peer: Pod, destination: Pod,
                    port: Port, model: Model) -> bool | None:
    """Whether the NetworkPolicies selecting `subject` allow this direction; None if none selects it."""
    selecting = [p for p in policies if p.selects(subject, direction)]
    if not selecting:
        return None  # not isolated in this direction
    for policy in selecting:
        for rule in policy.rules[direction]:
            peers, ports = rule.get(_PEERS[direction]) or (), rule.get("ports") or ()
            if ((not peers or any(_peer_matches(x, policy, peer, model) for x in peers))
                    and (not ports or any(_port_matches(e, destination, port) for e in ports))):
                return True
    return False


def allowed(model: Model, policies: Sequence[Mapping[str, Any]], source: Pod, destination: Pod, port: Port,
            cluster_policies: Sequence[Mapping[str, Any]] = ()) -> bool:
    """Whether `source` may open `port` on `destination`; a pod may always reach itself."""
    read = [_Policy.read(p, model) for p in policies]
    return _cell(read, admin.read(cluster_policies), model, source, destination, port)[0]


def _cell(policies: Sequence[_Policy], cluster: Sequence[admin.ClusterPolicy], model: Model, source: Pod,
          destination: Pod, port: Port) -> tuple[bool, tuple[str, ...]]:
    """Egress at the source and ingress at the destination must both allow; the cluster-scoped
    policies that decided are the blocking directions', or both directions' when allowed."""
    if source == destination:
        return True, ()
    verdicts = [admin.tiers(cluster, direction, subject, peer, destination, port, model,
                            _network_policy(policies, direction, subject, peer, destination, port, model))
                for direction, subject, peer in ((EGRESS, source, destination), (INGRESS, destination, source))]
    denying = [v for v in verdicts if not v[0]]
    return not denying, tuple(dict.fromkeys(name for v in denying or verdicts for name in v[1]))


def _cells(model: Model, policies: Sequence[Mapping[str, Any]], cluster_policies: Sequence[Mapping[str, Any]]
           ) -> Iterator[tuple[Pod, Target, Port, bool, tuple[str, ...]]]:
    """Every pod to every target and port it serves, except a pod to itself (also through a Service).

    A Service cell is the outcome for its backends, which must agree: kube-proxy picks one at random.
    """
    read, cluster = [_Policy.read(p, model) for p in policies], admin.read(cluster_policies)
    for source in model.pods:
        for target in model.targets():
            backends = model.backends(target)
            if source in backends:
                continue
            for port in model.target_ports(target):
                verdicts = [_cell(read, cluster, model, source, b, port) for b in backends if port in b.ports]
                if len({ok for ok, _ in verdicts}) > 1:
                    raise K8sSecError(f"{source.short} -> {target.short} port {port}: the backends disagree, so the "
                                      f"outcome depends on which one kube-proxy picks; give them the same labels")
                yield source, target, port, verdicts[0][0], tuple(dict.fromkeys(n for _, names in verdicts
                                                                                 for n in names))


def expected_table(model: Model, policies: Sequence[Mapping[str, Any]],
                   cluster_policies: Sequence[Mapping[str, Any]] = ()) -> TruthTable:
    """The outcome of every cell under NetworkPolicies and cluster-scoped policies (netpol/admin.py)."""
    table = TruthTable([p.short for p in model.pods], [t.short for t in model.targets()], list(model.ports))
    for source, target, port, ok, _ in _cells(model, policies, cluster_policies):
        table.set(source.short, target.short, port, Outcome.ALLOWED if ok else Outcome.BLOCKED)
    return table


def cluster_decisions(model: Model, policies: Sequence[Mapping[str, Any]],
                      cluster_policies: Sequence[Mapping[str, Any]]) -> dict[Key, tuple[str, ...]]:
    """The cells a cluster-scoped policy decided, with its label ("AdminNetworkPolicy/name"), for the report."""
    return {(source.short, target.short, port): names
            for source, target, port, _, names in _cells(model, policies, cluster_policies) if names}
