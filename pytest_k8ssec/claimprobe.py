"""Reachability claims on the user's own workloads: probe pods stand for the sources, destinations are real.

A probe pod carries the source's labels in the source namespace, so the cluster's own policies
select it as they select the pods it stands for. It is never Ready (its readiness probe always
fails), so no Service sends it traffic, and its controller owner is the run's namespace, so no
ReplicaSet adopts it (`Run.create_outside`). TCP is judged by a connection (busybox `nc`), UDP
by a DNS reply (busybox `nslookup`); "sent" is never "reached". Every cell is observed twice and
the two rounds must agree.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .answers import status_message
from .claims import CanI, Claim, Claims, Destination, Reach, Source, Subject
from .errors import K8sSecError
from .handle import Images
from .netpol.model import selector_matches
from .netpol.probe import REFUSED, TIMED_OUT, result_lines
from .netpol.truthtable import Outcome
from .pods import exec_in, non_root_pod
from .run import RUN_LABEL, Run
from .waits import wait_for

TIMEOUT_S = 3
ROUNDS = 2
NO_REPLY = ("no servers could be reached", "timed out")
DNS_REPLY = ("Name:", "server can't find", "NXDOMAIN")  # an answer, or the server saying it has none


@dataclass(frozen=True)
class Target:
    """One address a claim's destination has: a pod of it, a Service's cluster IP, or the IP given."""

    name: str          # e.g. "shop-data/db-5d9c" or "service shop-web/api"
    host: str
    port: int
    protocol: str
    namespace: str = ""  # of a destination pod: its policies are the ones in force for it
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.protocol.lower()}:{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.name} ({self.host}):{self.port}/{self.protocol}"


# -- checks before anything is made ---------------------------------------------------------------

def check(api: client.ApiClient, claims: Claims) -> None:
    """Every namespace, pod selector, Service and service account a claim names exists; else one line, naming it."""
    core = client.CoreV1Api(api)
    namespaces = {ns.metadata.name for ns in core.list_namespace().items}

    def fail(claim: Claim, field: str, problem: str) -> K8sSecError:
        return K8sSecError(f"claims file {claims.path}: claim {claim.id}: {field}: {problem}")

    def namespace(claim: Claim, field: str, name: str) -> None:
        if name not in namespaces:
            raise fail(claim, field, f"namespace {name} does not exist on this cluster")

    def subject(claim: Claim, field: str, who: Subject | None) -> None:
        if who and who.user.startswith("system:serviceaccount:"):
            _, _, ns, name = who.user.split(":", 3)
            namespace(claim, field, ns)
            try:
                core.read_namespaced_service_account(name, ns)
            except ApiException:
                raise fail(claim, field, f"service account {ns}/{name} does not exist") from None

    for claim in claims.claims:
        c = claim.check
        if isinstance(c, Reach):
            for field, source in (("reach.from", c.source), ("reach.control.from", c.control)):
                if source:
                    namespace(claim, f"{field}.namespace", source.namespace)
                    if source.pods and not _pods(core, source.namespace, source.labels):
                        raise fail(claim, f"{field}.pods", f"{_selector(source.labels)} matches no pod in "
                                   f"namespace {source.namespace}")
            if c.destination.namespace:
                namespace(claim, "reach.to.namespace", c.destination.namespace)
            targets(core, claim, fail)
        elif isinstance(c, CanI):
            if c.namespace:
                namespace(claim, "can-i.namespace", c.namespace)
            subject(claim, "can-i.subject", c.subject)
        else:
            namespace(claim, "admission.namespace", c.namespace)
            subject(claim, "admission.as", c.subject)


def targets(core: client.CoreV1Api, claim: Claim, fail: Any = None) -> list[Target]:
    """The addresses a reachability claim's destination has now."""
    reach: Reach = claim.check
    to: Destination = reach.destination
    fail = fail or (lambda claim, field, problem: K8sSecError(f"claim {claim.id}: {field}: {problem}"))
    if to.ip:
        return [Target(to.ip, to.ip, reach.port, reach.protocol)]
    if to.service:
        ns, name = to.service.split("/", 1)
        try:
            service = core.read_namespaced_service(name, ns)
        except ApiException:
            raise fail(claim, "reach.to.service", f"Service {to.service} does not exist") from None
        if not any(p.port == reach.port and (p.protocol or "TCP") == reach.protocol for p in service.spec.ports or []):
            raise fail(claim, "reach.port", f"Service {to.service} has no {reach.protocol} port {reach.port}")
        if not service.spec.cluster_ip or service.spec.cluster_ip == "None":
            raise fail(claim, "reach.to.service", f"Service {to.service} has no cluster IP: name its pods instead")
        return [Target(f"service {to.service}", service.spec.cluster_ip, reach.port, reach.protocol)]
    pods = [p for p in _pods(core, to.namespace, to.labels) if p.status.pod_ip and p.status.phase == "Running"]
    if not pods:
        raise fail(claim, "reach.to.pods", f"{_selector(to.labels)} matches no running pod in namespace {to.namespace}")
    return [Target(f"{to.namespace}/{p.metadata.name}", p.status.pod_ip, reach.port, reach.protocol, to.namespace,
                   tuple(sorted((p.metadata.labels or {}).items()))) for p in pods]


def _pods(core: client.CoreV1Api, namespace: str, labels: dict[str, str]) -> list[Any]:
    return [p for p in core.list_namespaced_pod(namespace, label_selector=_selector(labels)).items
            if RUN_LABEL not in (p.metadata.labels or {})]


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


# -- the probes -----------------------------------------------------------------------------------

def command(target: Target, dns_name: str) -> list[str]:
    """The probe of one target as words: a TCP connection, or a DNS question over UDP."""
    if target.protocol == "UDP":
        return ["timeout", str(TIMEOUT_S), "busybox", "nslookup", dns_name, target.host]
    return ["timeout", str(TIMEOUT_S), "busybox", "nc", target.host, str(target.port), "-e", "true"]


def script(probes: dict[str, list[str]]) -> str:
    """All of one source's probes in parallel, one line `ID STATUS OUTPUT` each."""
    lines = ["set -f", "probe() { id=$1; shift; out=$(\"$@\" 2>&1); rc=$?; printf '%s %s %s\\n' \"$id\" \"$rc\" \"$(echo $out)\"; }"]
    lines += [f"probe {shlex.quote(ident)} {' '.join(map(shlex.quote, words))} &" for ident, words in probes.items()]
    return "\n".join([*lines, "wait"]) + "\n"


def classify(protocol: str, status: int, output: str) -> tuple[Outcome, str]:
    """A probe's outcome: reached (a connection, a DNS reply), blocked (no answer, refused), or unreadable."""
    if status in TIMED_OUT:
        return Outcome.BLOCKED, TIMED_OUT[status]
    if protocol == "UDP":
        if any(r in output for r in DNS_REPLY):
            return Outcome.ALLOWED, "a DNS reply"
        if any(r in output for r in NO_REPLY):
            return Outcome.BLOCKED, f"no reply: {output}"
    elif status == 0:
        return Outcome.ALLOWED, "connected"
    if status == 1 and any(r in output for r in REFUSED):
        return Outcome.BLOCKED, f"rejected: {output}"
    return Outcome.ERROR, f"unrecognised result (exit {status}): {output}".rstrip(": ")


@dataclass(frozen=True)
class Cell:
    source: Source
    target: Target
    rounds: tuple[tuple[Outcome, str], ...]

    @property
    def outcome(self) -> Outcome:
        """The cell's outcome when every round agrees; ERROR when they differ or one could not be read."""
        outcomes = {o for o, _ in self.rounds}
        return outcomes.pop() if len(outcomes) == 1 else Outcome.ERROR

    def __str__(self) -> str:
        seen = " / ".join(f"{o.name.lower()} ({d})" for o, d in self.rounds)
        return f"{self.source} -> {self.target}: {seen}"


class ProbeLab:
    """Probe pods for every source the claims name (their own and their controls'), observed together."""

    def __init__(self, run: Run, api: client.ApiClient, images: Images) -> None:
        self.run, self.api, self.images = run, api, images
        self.core = client.CoreV1Api(api)
        self.pods: dict[Source, str] = {}

    def start(self, sources: Iterable[Source]) -> None:
        """Create a probe pod per source not yet probed from, all at once, and wait for them together."""
        for source in dict.fromkeys(s for s in sources if s not in self.pods):
            name = self.run.name(f"probe-{len(self.pods)}")
            manifest = non_root_pod(name, source.namespace, self.images, labels=source.labels)
            manifest["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 60}
            try:
                self.run.create_outside(manifest)
            except ApiException as exc:
                raise K8sSecError(f"a probe pod for {source} was refused ({exc.status} {exc.reason}): "
                                  f"{status_message(exc)[:200]}") from None
            self.pods[source] = name

        def running() -> list[str]:
            waiting = []
            for source, name in self.pods.items():
                pod = self.core.read_namespaced_pod(name, source.namespace)
                if pod.status.phase != "Running" or not pod.status.container_statuses \
                        or not pod.status.container_statuses[0].started:
                    waiting.append(f"{source.namespace}/{name} ({pod.status.phase})")
            return waiting
        wait_for(f"the {len(self.pods)} probe pods to run", running, timeout=120, interval=0.2, max_interval=1,
                 ready=lambda left: not left)

    def observe(self, plan: dict[Source, dict[Target, str]]) -> dict[tuple[Source, Target], Cell]:
        """Every (source, target) of the plan, ROUNDS times; sources in parallel, each source's targets at once."""
        rounds: dict[tuple[Source, Target], list[tuple[Outcome, str]]] = {}
        for _ in range(ROUNDS):
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = pool.map(lambda item: self._round(*item), plan.items())
                for found in results:
                    for key, observation in found.items():
                        rounds.setdefault(key, []).append(observation)
        return {key: Cell(key[0], key[1], tuple(obs)) for key, obs in rounds.items()}

    def _round(self, source: Source, targets: dict[Target, str]) -> dict[tuple[Source, Target], tuple[Outcome, str]]:
        probes = {t.id: command(t, dns_name) for t, dns_name in targets.items()}
        _, output = exec_in(self.api, source.namespace, self.pods[source], ["sh", "-c", script(probes)],
                            timeout=TIMEOUT_S + 20)
        found = result_lines(output, set(probes))
        result = {}
        for t in targets:
            lines = found.get(t.id, [])
            status, _, text = (lines[0].partition(" ") if len(lines) == 1 else ("", "", ""))
            result[(source, t)] = (classify(t.protocol, int(status), text) if status.isdigit()
                                   else (Outcome.ERROR, f"no result line: {output.strip()[:200]}"))
        return result


@dataclass(frozen=True)
class Judgement:
    """A reachability claim's verdict from its cells and its positive control's: pass, fail or not observed."""

    verdict: str
    message: str
    evidence: dict[str, Any]

    def settle(self) -> None:
        """End the pytest case as the verdict says: failed, skipped as not observed, or passing on."""
        if self.verdict == "fail":
            pytest.fail(self.message)
        if self.verdict == "not observed":
            pytest.skip(self.message)


@dataclass(frozen=True)
class Observed:
    """Reachability claims' cells and their positive controls', observed together."""

    targets: dict[str, list[Target]]
    controls: dict[str, list[Source]]
    cells: dict[tuple[Source, Target], Cell]

    def judge(self, claim: Claim, ident: str, policies: Callable[[Source, Target], list[str]]) -> Judgement:
        reach: Reach = claim.check
        found, sources = self.targets[claim.id], self.controls[claim.id]
        return judge(ident, reach, [self.cells[(reach.source, t)] for t in found],
                     [self.cells[(s, t)] for s in sources for t in found], sources, policies)


def observe(lab: ProbeLab, core: client.CoreV1Api, claims: list[Claim]) -> Observed:
    """Probe pods for every source and control, created together; two rounds of every cell, in parallel."""
    found = {c.id: targets(core, c) for c in claims}
    controls = {c.id: control_sources(c, claims) for c in claims}
    plan: dict[Source, dict[Target, str]] = {}
    for c in claims:
        for source in [c.check.source, *controls[c.id]]:
            plan.setdefault(source, {}).update({t: c.check.dns_name for t in found[c.id]})
    lab.start(plan)
    return Observed(found, controls, lab.observe(plan))


def control_sources(claim: Claim, claims: list[Claim]) -> list[Source]:
    """Where a blocked claim's destination must answer from: the claim's control, or the sources of the
    claims that say the same destination is allowed on the same port."""
    reach: Reach = claim.check
    if reach.allowed or reach.no_control:
        return []
    if reach.control:
        return [reach.control]
    return list(dict.fromkeys(c.check.source for c in claims if c.check.allowed and c.check.destination == reach.destination
                              and (c.check.port, c.check.protocol) == (reach.port, reach.protocol)))


def judge(ident: str, reach: Reach, cells: list[Cell], controls: list[Cell], control_sources: list[Source],
          policies: Callable[[Source, Target], list[str]]) -> Judgement:
    """Allowed: every cell reached in both rounds. Blocked: every cell unreached in both rounds, and each
    destination reached from a control source, unless the claim says why it has none."""
    evidence: dict[str, Any] = {"mechanism": "NetworkPolicy enforcement (probe pods with the source's labels)",
                                "cells": [str(c) for c in cells]}
    if not reach.allowed:
        evidence["positive control"] = [str(c) for c in controls] or f"none: {reach.no_control}"
    unreadable = [c for c in [*cells, *controls] if c.outcome == Outcome.ERROR]
    if unreadable:
        return Judgement("fail", f"{ident}: cells not readable (the two rounds differ, or a probe failed): "
                         + "; ".join(map(str, unreadable)), evidence)
    if not reach.allowed and not reach.no_control:
        answered = {c.target for c in controls if c.outcome == Outcome.ALLOWED}
        silent = [c.target for c in cells if c.target not in answered]
        if silent:
            where = ", ".join(map(str, control_sources)) or "nowhere: no claim allows it and none is given"
            return Judgement("not observed", f"not observed: {', '.join(map(str, silent))} answered from no allowed "
                             f"source ({where}), so 'blocked' cannot be told from 'down': give reach.control.from a "
                             "source the policies allow, or reach.control.none with the reason", evidence)
    want = Outcome.ALLOWED if reach.allowed else Outcome.BLOCKED
    wrong = [c for c in cells if c.outcome != want]
    if wrong:
        return Judgement("fail", f"{ident}: " + "; ".join(
            f"{c} (expected {want.name.lower()}); policies in force: "
            f"{', '.join(policies(c.source, c.target)) or 'none'}" for c in wrong), evidence)
    return Judgement("pass", "", evidence)


def policies_in_force(api: client.ApiClient) -> Callable[[Source, Target], list[str]]:
    """For a failure: the NetworkPolicies selecting a cell's source (egress) or destination pod (ingress)."""
    return lambda source, target: _policies(api, source, target)


def _policies(api: client.ApiClient, source: Source, target: Target) -> list[str]:
    """The NetworkPolicies that select the source (egress) or the destination pod (ingress)."""
    net = client.NetworkingV1Api(api)
    found = []
    for namespace, labels, direction in ((source.namespace, source.labels, "Egress"),
                                         (target.namespace, dict(target.labels), "Ingress")):
        if not namespace:
            continue
        for policy in net.list_namespaced_network_policy(namespace).items:
            types = policy.spec.policy_types or ["Ingress"]
            selector = api.sanitize_for_serialization(policy.spec.pod_selector) or {}
            if direction in types and selector_matches(selector, labels):
                found.append(f"{namespace}/{policy.metadata.name} ({direction.lower()})")
    return sorted(set(found))
