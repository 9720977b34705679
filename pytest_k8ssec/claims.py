"""The user's claims file: claims about the cluster's own namespaces, policies and identities.

Validated against the published JSON Schema (`schemas/claims.schema.json`), then turned into
typed claims. Each claim has an ID of the user's, which counts in the verdict like a built-in
behaviour. What the schema cannot know (the namespaces, pods and Services a claim names) is
checked on the cluster before the run creates anything (`claimprobe.check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .behaviours import BEHAVIOURS
from .errors import K8sSecError
from .schema import load_yaml, violation

DEFAULT_DNS_NAME = "kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Source:
    """Where a probe runs from: a namespace, and the labels of the pods it stands for (none: an unlabelled pod)."""

    namespace: str
    pods: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pods)

    def __str__(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.pods)
        return f"{self.namespace}{{{labels}}}" if labels else f"{self.namespace}{{any pod}}"


@dataclass(frozen=True)
class Destination:
    """Pods of a namespace by labels, a Service `ns/name`, or one IP address."""

    namespace: str = ""
    pods: tuple[tuple[str, str], ...] = ()
    service: str = ""
    ip: str = ""

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pods)

    def __str__(self) -> str:
        if self.service:
            return f"service {self.service}"
        if self.ip:
            return self.ip
        return str(Source(self.namespace, self.pods))


@dataclass(frozen=True)
class Reach:
    source: Source
    destination: Destination
    port: int
    protocol: str
    allowed: bool
    control: Source | None = None   # the positive control's source for a blocked claim
    no_control: str = ""            # or why the claim has none
    dns_name: str = DEFAULT_DNS_NAME

    def describe(self) -> str:
        return (f"{self.source} -> {self.destination}:{self.port}/{self.protocol} "
                f"{'allowed' if self.allowed else 'blocked'}")


@dataclass(frozen=True)
class Subject:
    """Who a can-i or admission claim asks as: a user with groups, a group, or a service account."""

    user: str = ""
    groups: tuple[str, ...] = ()

    @classmethod
    def read(cls, spec: dict[str, Any]) -> Subject:
        if "serviceaccount" in spec:
            ns, name = spec["serviceaccount"].split("/", 1)
            return cls(f"system:serviceaccount:{ns}:{name}",
                       ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"))
        if "group" in spec:
            return cls("", (spec["group"],))
        return cls(spec["user"], tuple(spec.get("groups", ())))

    def __str__(self) -> str:
        return self.user or f"group {', '.join(self.groups)}"


@dataclass(frozen=True)
class CanI:
    subject: Subject
    verb: str
    resource: str
    namespace: str  # "" for cluster scope
    allowed: bool

    def describe(self) -> str:
        return f"{self.subject} may {self.verb} {self.resource} in {self.namespace or 'the cluster'}: " \
               f"{'yes' if self.allowed else 'no'}"


@dataclass(frozen=True)
class Admission:
    namespace: str
    pod: dict[str, Any] = field(hash=False, compare=False)
    subject: Subject | None
    admitted: bool

    def describe(self) -> str:
        who = f" as {self.subject}" if self.subject else ""
        return f"pod {self.pod['metadata'].get('name', '?')} in {self.namespace}{who}: " \
               f"{'admitted' if self.admitted else 'refused'}"


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    check: Reach | CanI | Admission

    @property
    def kind(self) -> str:
        return {Reach: "reach", CanI: "can-i", Admission: "admission"}[type(self.check)]


@dataclass(frozen=True)
class Claims:
    """A loaded claims file: its claims, and the IDs of the user's own tests it declares."""

    path: str
    claims: tuple[Claim, ...] = ()
    declared: dict[str, str] = field(default_factory=dict, hash=False)  # ID -> title

    @property
    def behaviours(self) -> dict[str, str]:
        """Every ID the file adds to the catalogue, with its title."""
        return {**self.declared, **{c.id: c.title for c in self.claims}}

    @property
    def reachability(self) -> list[Claim]:
        return [c for c in self.claims if isinstance(c.check, Reach)]


def catalogue(claims: Claims | None) -> dict[str, str]:
    """Every behaviour ID of a run with its title: the built-in ones, then the user's own."""
    return {**BEHAVIOURS, **(claims.behaviours if claims else {})}


def load_claims(path: Path | None) -> Claims | None:
    """Read and validate a claims file; every problem is one line naming the claim and the field."""
    if path is None:
        return None
    try:
        data = load_yaml(path.read_text())
    except OSError as exc:
        raise K8sSecError(f"claims file {path}: cannot read it ({exc.strerror}): pass an existing --k8s-sec-claims") from None
    except yaml.YAMLError as exc:
        raise K8sSecError(f"claims file {path}: not YAML ({str(exc).splitlines()[0]})") from None
    return load_data(path, data)


def reach_claim(ident: str, spec: dict[str, Any]) -> Claim:
    """One reachability claim in the claims file's shape (`from`, `to`, `port`, ...), validated by the same schema."""
    return load_data(f"<reachability asked by {ident}>", {"claims": [{"id": "TEST-1", "reach": spec}]}).claims[0]


def load_data(path: Any, data: Any) -> Claims:
    found = violation("claims", data)
    if found:
        entry = found.entry(data, "claims")
        where = f"claim {entry[1] or '#' + str(entry[0])}: {found.line(2)}" if entry else found.line()
        raise K8sSecError(f"claims file {path}: {where}")
    return _build(path, data)


def _build(path: Path, data: dict[str, Any]) -> Claims:
    claims, seen = [], set(BEHAVIOURS)
    declared = dict(data.get("behaviours", {}))
    for ident in declared:
        if ident in seen:
            raise K8sSecError(f"claims file {path}: behaviours: {ident} is a built-in behaviour ID; give yours another")
        seen.add(ident)
    for item in data.get("claims", []):
        ident = item["id"]
        if ident in seen:
            raise K8sSecError(f"claims file {path}: claim {ident}: id: {ident} is used twice (or is a built-in "
                              "behaviour ID); each claim needs its own")
        seen.add(ident)
        check = _check(path, item)
        claims.append(Claim(ident, item.get("title") or check.describe(), check))
    return Claims(str(path), tuple(claims), declared)


def _labels(spec: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(spec.get("pods", {}).items()))


def _check(path: Path, item: dict[str, Any]) -> Reach | CanI | Admission:
    if "reach" in item:
        spec = item["reach"]
        source = Source(spec["from"]["namespace"], _labels(spec["from"]))
        to = spec["to"]
        destination = Destination(to.get("namespace", ""), _labels(to), to.get("service", ""), to.get("ip", ""))
        control = spec.get("control", {})
        protocol = spec.get("protocol", "TCP")
        if protocol == "UDP" and spec["port"] != 53:
            raise K8sSecError(f"claims file {path}: claim {item['id']}: reach.port: a UDP claim is judged by a DNS reply, "
                              "so its port must be 53")
        if spec["expect"] == "allowed" and control:
            raise K8sSecError(f"claims file {path}: claim {item['id']}: reach.control: only a blocked claim has a "
                              "positive control; remove it")
        return Reach(source, destination, spec["port"], protocol, spec["expect"] == "allowed",
                     Source(control["from"]["namespace"], _labels(control["from"])) if "from" in control else None,
                     control.get("none", ""), spec.get("dns_name", DEFAULT_DNS_NAME))
    if "can-i" in item:
        spec = item["can-i"]
        return CanI(Subject.read(spec["subject"]), spec["verb"], spec["resource"], spec.get("namespace", ""),
                    spec["expect"] in ("yes", True))
    spec = item["admission"]
    pod = spec.get("pod") or _pod_file(path, item["id"], spec["file"])
    pod = {"apiVersion": "v1", "kind": "Pod", **pod}
    meta = pod.setdefault("metadata", {})
    meta.setdefault("name", f"k8ssec-claim-{item['id'].lower()}")
    meta["namespace"] = spec["namespace"]
    return Admission(spec["namespace"], pod, Subject.read(spec["as"]) if "as" in spec else None,
                     spec["expect"] == "admitted")


def _pod_file(path: Path, ident: str, name: str) -> dict[str, Any]:
    """A pod manifest from a file beside the claims file."""
    pod_path = path.parent / name
    try:
        pod = yaml.safe_load(pod_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise K8sSecError(f"claims file {path}: claim {ident}: admission.file: cannot read {pod_path} "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod" or "spec" not in pod:
        raise K8sSecError(f"claims file {path}: claim {ident}: admission.file: {pod_path} is not a Pod manifest")
    return pod
