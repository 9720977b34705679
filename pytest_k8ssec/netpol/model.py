"""The namespaces, pods and ports a reachability test is about, as plain data.

Namespaces are named by a logical key ("tenant", "other") so expectations read like the seed;
a run binds each key to its real, unique, labelled namespace name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from ..errors import K8sSecError

NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace (1.21+)
INGRESS, EGRESS = "Ingress", "Egress"  # the directions a policy governs


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels; an empty (or absent) selector matches everything."""
    selector = selector or {}
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ValueError(f"label selector has unknown fields {sorted(unknown)}")
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"matchExpressions operator {op!r} is not one of In, NotIn, Exists, DoesNotExist")


@dataclass(frozen=True)
class Port:
    """A container port a server pod listens on; `name` is what named-port policies refer to."""

    number: int
    name: str | None = None
    protocol: str = "TCP"

    def __str__(self) -> str:
        text = f"{self.number}/{self.protocol}"
        return f"{text} ({self.name})" if self.name else text


@dataclass(frozen=True)
class Namespace:
    key: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    """A pod by namespace key and name; pods with `ports` are servers, every pod is a client."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    node: str | None = None
    ports: tuple[Port, ...] = ()

    @property
    def short(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port_named(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


@dataclass(frozen=True)
class Service:
    """A Service in front of the server pods its selector matches; its ports are the pods' ports."""

    namespace: str
    name: str
    selector: Mapping[str, str]


class TargetKind(Enum):
    POD = "pod"
    SERVICE = "service"


@dataclass(frozen=True)
class Target:
    """What a probe connects to: a pod by its IP, or a Service by its cluster IP."""

    namespace: str
    name: str
    kind: TargetKind = TargetKind.POD

    @property
    def short(self) -> str:
        prefix = "svc:" if self.kind is TargetKind.SERVICE else ""
        return f"{self.namespace}/{prefix}{self.name}"


@dataclass(frozen=True)
class Model:
    """Namespaces, pods and services of one scenario, and the real namespace names of this run."""

    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    services: tuple[Service, ...] = ()
    real_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = {ns.key for ns in self.namespaces}
        for item in (*self.pods, *self.services):
            if item.namespace not in keys:
                raise K8sSecError(f"{item.namespace}/{item.name} refers to namespace key {item.namespace!r}, "
                                  f"which the model does not declare (known: {', '.join(sorted(keys))})")
        if len(set(self.real_names.values())) != len(self.real_names):
            raise K8sSecError(f"real namespace names must be unique, got {dict(self.real_names)}")

    def bind(self, real_names: Mapping[str, str]) -> Model:
        """The same model with each namespace key mapped to this run's real namespace name."""
        return replace(self, real_names=dict(real_names))

    def real_name(self, key: str) -> str:
        try:
            return self.real_names[key]
        except KeyError:
            raise K8sSecError(f"namespace key {key!r} has no real name yet: bind the model to the run's "
                              f"namespaces with Model.bind()") from None

    def key_of(self, real_name: str) -> str:
        """The namespace key behind a real name, e.g. a policy's metadata.namespace."""
        for key, name in self.real_names.items():
            if name == real_name:
                return key
        raise K8sSecError(f"namespace {real_name!r} is not one of this model's "
                          f"({', '.join(sorted(self.real_names.values())) or 'none bound'})")

    def namespace(self, key: str) -> Namespace:
        for ns in self.namespaces:
            if ns.key == key:
                return ns
        raise K8sSecError(f"namespace key {key!r} is not declared in the model")

    def namespace_labels(self, key: str) -> dict[str, str]:
        """The labels a namespaceSelector sees, including the API server's own name label."""
        return {**self.namespace(key).labels, NAME_LABEL: self.real_name(key)}

    def relabel(self, key: str, labels: Mapping[str, str]) -> Model:
        """The model after `kubectl label ns`: the namespace's labels gain (or change to) `labels`."""
        ns = self.namespace(key)
        new = replace(ns, labels={**ns.labels, **labels})
        return replace(self, namespaces=tuple(new if n is ns else n for n in self.namespaces))

    @property
    def ports(self) -> tuple[Port, ...]:
        """Every port some server pod listens on, in first-seen order."""
        return tuple(dict.fromkeys(p for pod in self.pods for p in pod.ports))

    def targets(self) -> tuple[Target, ...]:
        """Server pods first, then services, in declaration order."""
        pods = tuple(Target(p.namespace, p.name) for p in self.pods if p.ports)
        return pods + tuple(Target(s.namespace, s.name, TargetKind.SERVICE) for s in self.services)

    def backends(self, target: Target) -> tuple[Pod, ...]:
        """The pods a target reaches: the pod itself, or the server pods a Service selects."""
        if target.kind is TargetKind.POD:
            return tuple(p for p in self.pods if (p.namespace, p.name) == (target.namespace, target.name))
        svc = next(s for s in self.services if (s.namespace, s.name) == (target.namespace, target.name))
        return tuple(p for p in self.pods if p.namespace == svc.namespace and p.ports
                     and all(p.labels.get(k) == v for k, v in svc.selector.items()))

    def target_ports(self, target: Target) -> tuple[Port, ...]:
        return tuple(dict.fromkeys(p for pod in self.backends(target) for p in pod.ports))
