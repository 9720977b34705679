"""Reachability on a real cluster: the probe lab's pods, one exec per source pod, and polling.

The pure parts (model, expected truth table, probe script, diff) live in `netpol/`; this module
creates the pods a model describes, runs every source pod's probes in parallel, and polls after
a policy change until the observed table equals the expected one, counting the attempts.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from kubernetes import client

from .cluster.handle import Images
from .netpol.expected import expected_table
from .netpol.model import Model, Target, TargetKind
from .netpol.probe import Observation, ProbeTarget, Tools, parse_probe_output, probe_script, reproduce_commands
from .netpol.truthtable import Key, Outcome, TruthTable, diff, wrong_cells
from .pods import exec_in, pod
from .subjects import Run
from .waits import WaitTimeout, wait_counting, wait_for

PROBE_TIMEOUT = 2     # seconds one wget may take; a dropping policy costs this much per cell
WORKERS = 8           # source pods probed at once
EXEC_TIMEOUT = 30
TOOLS = Tools()       # how probes call wget and timeout in the lab's pods


@dataclass
class Prober:
    """Observes a table: one exec per source pod, running all of that pod's probes in parallel."""

    api: client.ApiClient
    model: Model
    addresses: Mapping[str, str]          # target short name -> IP the probe dials
    tools: Tools = TOOLS
    probes: int = 0
    seconds: float = 0.0
    last: dict[Key, Observation] = field(default_factory=dict)

    def observe(self, expected: TruthTable) -> TruthTable:
        """The observed outcome of every cell `expected` has; a failed exec makes its cells ERROR."""
        by_source: dict[str, list[ProbeTarget]] = {}
        for source, destination, port in expected.keys():
            by_source.setdefault(source, []).append(ProbeTarget(destination, port, self.addresses[destination]))
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            parts = list(pool.map(lambda item: self._probe_from(*item), by_source.items()))
        self.seconds = time.monotonic() - started
        observed = expected.empty_like()
        self.last = {}
        for source, results in parts:
            for target, seen in results.items():
                observed.set(source, target.destination, target.port, seen.outcome)
                self.last[(source, target.destination, target.port)] = seen
        self.probes += len(observed.cells)
        return observed

    def _probe_from(self, source: str, targets: list[ProbeTarget]) -> tuple[str, dict[ProbeTarget, Observation]]:
        pod_ = next(p for p in self.model.pods if p.short == source)
        script = probe_script(targets, PROBE_TIMEOUT, self.tools)
        try:
            code, output = exec_in(self.api, self.model.real_name(pod_.namespace), pod_.name, ["sh", "-c", script],
                                   timeout=EXEC_TIMEOUT)
        except Exception as exc:  # the exec itself failed: no cell of this source can be judged
            return source, {t: Observation(Outcome.ERROR, f"exec failed: {exc}") for t in targets}
        results = parse_probe_output(output, targets)
        if code != 0:
            results = {t: o if o.outcome is Outcome.ERROR else Observation(Outcome.ERROR, f"probe script exited {code}")
                       for t, o in results.items()}
        return source, results


@dataclass
class Verdict:
    expected: TruthTable
    observed: TruthTable
    attempts: int
    seconds: float

    @property
    def wrong(self) -> list:
        return wrong_cells(self.expected, self.observed)

    @property
    def errors(self) -> int:
        return sum(1 for o in self.observed.cells.values() if o is Outcome.ERROR)


class Lab:
    """The pods and Services of a model, created once, and the policies currently in force."""

    def __init__(self, run: Run, api: client.ApiClient, model: Model, images: Images) -> None:
        self.run, self.api, self.model = run, api, model
        self.core, self.net = client.CoreV1Api(api), client.NetworkingV1Api(api)
        self._create(images)
        self.prober = Prober(api, self.model, self._addresses(), TOOLS)

    def _create(self, images: Images) -> None:
        for p in self.model.pods:
            manifest = pod(p.name, self.model.real_name(p.namespace), images, image=images.httpd,
                           command=list(images.httpd_command) or None,
                           labels=dict(p.labels), node=p.node)
            manifest["spec"]["containers"][0]["ports"] = [{"containerPort": port.number, "name": port.name}
                                                          for port in p.ports]
            self.run.create(manifest)
        for svc in self.model.services:
            ports = self.model.target_ports(Target(svc.namespace, svc.name, TargetKind.SERVICE))
            self.run.create({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": svc.name, "namespace": self.model.real_name(svc.namespace)},
                             "spec": {"selector": dict(svc.selector),
                                      "ports": [{"name": p.name, "port": p.number, "targetPort": p.number} for p in ports]}})

    def _addresses(self) -> dict[str, str]:
        def pod_ips() -> dict[str, str]:
            found = {}
            for ns_key in {p.namespace for p in self.model.pods}:
                for item in self.core.list_namespaced_pod(self.model.real_name(ns_key)).items:
                    if item.status.phase == "Running" and item.status.pod_ip:
                        found[f"{ns_key}/{item.metadata.name}"] = item.status.pod_ip
            return found

        ips = wait_for("the reachability lab's pods to run", pod_ips, timeout=120,
                       ready=lambda f: all(p.short in f for p in self.model.pods))
        for svc in self.model.services:
            found = self.core.read_namespaced_service(svc.name, self.model.real_name(svc.namespace))
            ips[Target(svc.namespace, svc.name, TargetKind.SERVICE).short] = found.spec.cluster_ip
        return ips

    def label_namespace(self, key: str, labels: dict[str, str]) -> None:
        """Label one of the lab's own namespaces, on the cluster and in the model."""
        self.core.patch_namespace(self.model.real_name(key), {"metadata": {"labels": labels}})
        self.model = self.model.relabel(key, labels)
        self.prober.model = self.model

    def enforce(self, policies: Sequence[dict[str, Any]]) -> None:
        """Exactly these NetworkPolicies in the lab's namespaces: earlier ones are deleted."""
        for key in self.model.real_names:
            self.net.delete_collection_namespaced_network_policy(self.model.real_name(key))
        for manifest in policies:
            self.run.create(_copy(manifest))

    def check(self, policies: Sequence[dict[str, Any]], timeout: float = 30) -> Verdict:
        """Put `policies` in force and poll the matrix until it equals the expected table, or time out.

        Probe errors are not something a policy change converges to: three observations with
        errors in a row end the wait early.
        """
        expected = expected_table(self.model, policies)
        self.enforce(policies)
        with_errors = []

        def settled(observed: TruthTable) -> bool:
            with_errors.append(any(o is Outcome.ERROR for o in observed.cells.values()))
            return not wrong_cells(expected, observed) or with_errors[-3:] == [True] * 3

        try:
            observed, attempts = wait_counting(
                f"the observed reachability to match the expected table ({len(policies)} policies)",
                lambda: self.prober.observe(expected), timeout=timeout, ready=settled)
        except WaitTimeout:
            observed, attempts = self.prober.observe(expected), 0
        return Verdict(expected, observed, attempts, self.prober.seconds)

    def explain(self, verdict: Verdict) -> str:
        """Expected, observed and diff tables and, per wrong cell, the kubectl command reproducing it."""
        wrong = verdict.wrong
        details = [f"  {m}: {self.prober.last.get((m.source, m.destination, m.port), Observation(m.observed, '')).detail}"
                   for m in wrong[:20]]
        commands = reproduce_commands(wrong[:20], self.model, self.prober.addresses, PROBE_TIMEOUT)
        return "\n\n".join([
            "EXPECTED\n" + verdict.expected.render(), "OBSERVED\n" + verdict.observed.render(),
            diff(verdict.expected, verdict.observed),
            "why, per wrong cell:\n" + "\n".join(details), "reproduce:\n" + "\n".join(commands)])


def _copy(manifest: dict[str, Any]) -> dict[str, Any]:
    return {**manifest, "metadata": {**manifest["metadata"], "labels": dict(manifest["metadata"].get("labels") or {})}}


def pods_by_node(model: Model, nodes: Sequence[str]) -> Model:
    """The model with its pods spread round-robin over `nodes`, so cells cross nodes."""
    spread = tuple(replace(p, node=nodes[i % len(nodes)]) for i, p in enumerate(model.pods))
    return replace(model, pods=spread)

