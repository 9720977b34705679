"""Reachability on a real cluster: the probe lab's pods, one exec per source pod, and polling.

The pure parts (model, expected truth table, probe script, diff) live in `netpol/`; this module
creates the pods a model describes, runs every source pod's probes in parallel, and polls after
a policy change until the observed table equals the expected one, counting the attempts.

A dead server, an endpoint-less Service or a broken overlay time out just like a dropping
policy. So a "blocked" verdict needs a positive control: with no policy in force, every cell a
case expects blocked must answer in this run, just before the case; during it, every server
still serves on its ports (checked from inside the pod in every round). A verdict needs
STABLE_ROUNDS consecutive matching observations, so an enforcer that flaps does not pass on one
lucky round.
"""

from __future__ import annotations

import logging
from collections import Counter
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from kubernetes import client
from kubernetes.client.rest import ApiException

from .handle import Images
from .kube import dynamic_client
from .netpol import admin
from .netpol.expected import cluster_decisions, expected_table
from .netpol.policies import allow_all
from .netpol.model import Model, Target, TargetKind
from .netpol.probe import Observation, ProbeTarget, Tools, parse_probe_output, probe_script, reproduce_commands
from .netpol.truthtable import Key, Outcome, TruthTable, diff, wrong_cells
from .pods import exec_in, is_ready, server_pod
from .run import Run
from .waits import WaitTimeout, wait_counting, wait_for

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2     # seconds one wget may take: 1 s flakes on allowed cells under load (two runs at once)
CONTROL_TIMEOUT = 1   # the positive control asks more: a cell must answer within this, before a case
# Consecutive observations that must agree with the expected table. A round sees a cell blocked
# only if the SYN and its retransmission a second later are both dropped, and a round with a
# blocked cell lasts PROBE_TIMEOUT and more: two rounds need a block that holds about 3.5 s.
STABLE_ROUNDS = 2
WORKERS = 16          # source pods probed at once: more than the lab has, so a round costs one probe timeout
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
    not_serving: list[str] = field(default_factory=list)  # server ports that did not answer in the last round

    def observe(self, expected: TruthTable, timeout: int = PROBE_TIMEOUT) -> TruthTable:
        """The observed outcome of every cell `expected` has; a failed exec makes its cells ERROR.

        In the same round every server probes its own ports on 127.0.0.1, where no policy
        applies: a port that does not answer there is not serving, and its blocked cells prove nothing.
        """
        by_source: dict[str, list[ProbeTarget]] = {}
        for source, destination, port in expected.keys():
            by_source.setdefault(source, []).append(ProbeTarget(destination, port, self.addresses[destination]))
        for server in self.model.pods:
            by_source.setdefault(server.short, []).extend(ProbeTarget(server.short, port, "127.0.0.1") for port in server.ports)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            parts = list(pool.map(lambda item: self._probe_from(*item, timeout=timeout), by_source.items()))
        self.seconds = time.monotonic() - started
        observed = expected.empty_like()
        self.last, self.not_serving = {}, []
        for source, results in parts:
            for target, seen in results.items():
                if target.destination == source:
                    if seen.outcome is not Outcome.ALLOWED:
                        self.not_serving.append(f"{target.id} ({seen.detail})")
                    continue
                observed.set(source, target.destination, target.port, seen.outcome)
                self.last[(source, target.destination, target.port)] = seen
        self.probes += len(observed.cells)
        return observed

    def _probe_from(self, source: str, targets: list[ProbeTarget],
                    timeout: int = PROBE_TIMEOUT) -> tuple[str, dict[ProbeTarget, Observation]]:
        pod_ = next(p for p in self.model.pods if p.short == source)
        script = probe_script(targets, timeout, self.tools)
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


class ProbeError(Exception):
    """Neither allowed nor blocked can be claimed: a probe crashed, or a positive control did not answer."""


@dataclass
class Control:
    """The positive control of a case: its blocked cells, observed with no policy in force, must be ALLOWED."""

    expected: TruthTable
    observed: TruthTable

    @property
    def unanswered(self) -> list:
        return wrong_cells(self.expected, self.observed)


@dataclass
class Verdict:
    expected: TruthTable
    observed: TruthTable
    attempts: int
    seconds: float
    matching_rounds: int = 0                  # consecutive observations equal to the expected table, at the end
    control: Control | None = None
    not_serving: list[str] = field(default_factory=list)  # servers that stopped answering during the case
    decided: dict[str, int] = field(default_factory=dict)  # cluster-scoped policy -> cells of the table it decided

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
        self.in_force: list[dict[str, Any]] = []
        self._create(images)
        self.cluster = cluster_network_policies(api)
        self.assumed: tuple[dict[str, Any], ...] = ()  # what the profile declares the unread cluster policies do
        for key in self.model.real_names if self.cluster.modelled else ():  # what the cluster's policies select by
            self.model = self.model.relabel(key, self.core.read_namespace(self.model.real_name(key)).metadata.labels or {})
        self.prober = Prober(api, self.model, self._addresses(wait=120), TOOLS)

    def _create(self, images: Images) -> None:
        for p in self.model.pods:
            self.run.create(server_pod(p.name, self.model.real_name(p.namespace), images,
                                       {port.name: port.number for port in p.ports}, labels=dict(p.labels), node=p.node))
        for svc in self.model.services:
            ports = self.model.target_ports(Target(svc.namespace, svc.name, TargetKind.SERVICE))
            self.run.create({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": svc.name, "namespace": self.model.real_name(svc.namespace)},
                             "spec": {"selector": dict(svc.selector),
                                      "ports": [{"name": p.name, "port": p.number, "targetPort": p.number} for p in ports]}})

    def _addresses(self, wait: float = 0) -> dict[str, str]:
        """Where each pod and Service is, waiting up to `wait` seconds for every pod to be Ready.

        Without a wait, a pod that is not Ready (its server stopped) is a ProbeError: no cell
        with it can be judged.
        """
        def pod_ips() -> dict[str, str]:
            found = {}
            for ns_key in {p.namespace for p in self.model.pods}:
                for item in self.core.list_namespaced_pod(self.model.real_name(ns_key)).items:
                    if is_ready(item) and item.status.pod_ip:
                        found[f"{ns_key}/{item.metadata.name}"] = item.status.pod_ip
            return found

        ips = wait_for("the reachability lab's pods to be Ready (serving)", pod_ips, timeout=wait, interval=0.2,
                       max_interval=0.5, ready=lambda f: all(p.short in f for p in self.model.pods)) if wait else pod_ips()
        not_ready = [p.short for p in self.model.pods if p.short not in ips]
        if not_ready:
            raise ProbeError(f"lab pods not Ready (not serving), so no cell with them can be judged: {', '.join(not_ready)}")
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
        """Exactly these policies in force: NetworkPolicies in the lab's namespaces, and the case's own cluster-scoped
        ones; earlier ones are deleted, the same ones left live."""
        if list(policies) == self.in_force:
            return
        for key in self.model.real_names:
            self.net.delete_collection_namespaced_network_policy(self.model.real_name(key))
        for manifest in self.in_force:
            if manifest["kind"] != "NetworkPolicy":
                self.run.dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"]).delete(
                    name=manifest["metadata"]["name"])
        for manifest in policies:
            self.run.create(_copy(manifest))
        self.in_force = [_copy(m) for m in policies]

    def check(self, policies: Sequence[dict[str, Any]], timeout: float = 30, control_first: bool = True,
              expected: TruthTable | None = None) -> Verdict:
        """Put `policies` in force and poll the matrix until it equals the expected table, or time out.

        `expected` is a table pinned by hand (the shipped cases'); without it, or with cluster-scoped
        policies in force (which pinned tables do not assume), the evaluator's.

        First the positive control: with no policy in force, the cells the case expects blocked
        must answer (pod IPs are read again, as a restarted pod has a new one). Under cluster-scoped
        policies the control puts an allow-all NetworkPolicy in each lab namespace instead, which
        opens what a baseline denies; cells an admin policy blocks even then have no control. In the last
        round, every server must still serve. The verdict is the last observation, never one
        made after the timeout. `control_first=False` leaves the policies in force live, for a
        case that changes labels under them after a checked round.
        """
        namespaced = [p for p in policies if p["kind"] == "NetworkPolicy"]
        own = tuple(p for p in policies if p["kind"] != "NetworkPolicy")  # the case's cluster-scoped ones
        cluster = self.cluster_in_effect
        if expected is None or cluster:
            expected = expected_table(self.model, namespaced, cluster + own)
        opening = [allow_all(self.model.real_name(key), labels=self.run.labels) for key in self.model.real_names] if cluster else []
        openable = expected_table(self.model, opening, cluster)
        self.prober.addresses = self._addresses()
        blocked = expected.empty_like()
        for key in expected.keys():
            if expected.cells[key] is Outcome.BLOCKED and openable.cells[key] is Outcome.ALLOWED:
                blocked.set(*key, Outcome.ALLOWED)
        control = None
        if blocked.cells and control_first:
            self.enforce(opening)
            what = "allow-all NetworkPolicies in force" if opening else "no policy in force"
            control = Control(blocked, self._poll(blocked, timeout, f"the positive control ({what})", rounds_needed=1,
                                                  probe_timeout=CONTROL_TIMEOUT)[0])
            if control.unanswered:
                return Verdict(expected, expected.empty_like(), 0, 0.0, control=control)
        self.enforce(policies)
        verdict = self._verdict(expected, timeout, f"the expected table ({len(policies)} policies)", control)
        if cluster or own:
            verdict.decided = _count(cluster_decisions(self.model, namespaced, cluster + own))
        return verdict

    @property
    def cluster_in_effect(self) -> tuple[dict[str, Any], ...]:
        """The cluster-scoped policies the tables model: those read from the cluster, and the profile's declaration."""
        return self.cluster.modelled + self.assumed

    def check_service_names(self, timeout: float = 30, expected: TruthTable | None = None) -> Verdict:
        """With no policy in force, every client reaches each Service by its DNS name `<service>.<namespace>`.

        That is how the seed's clients reach nginx; it needs the cluster's DNS as well as its
        Service routing. Pod columns are left out: the IP check covers them. `expected` is the
        no-policy table pinned by hand, if given; else the evaluator's.
        """
        self.enforce([])
        names = {Target(svc.namespace, svc.name, TargetKind.SERVICE).short: f"{svc.name}.{self.model.real_name(svc.namespace)}"
                 for svc in self.model.services}
        cluster = self.cluster_in_effect  # pinned tables assume none
        every = expected if expected is not None and not cluster else expected_table(self.model, [], cluster)
        expected = every.empty_like()
        for key in every.keys():
            if key[1] in names:
                expected.set(*key, every.cells[key])
        self.prober.addresses = {**self._addresses(), **names}
        return self._verdict(expected, timeout, "every client reaching the Services by DNS name")

    def _verdict(self, expected: TruthTable, timeout: float, what: str, control: Control | None = None) -> Verdict:
        observed, rounds = self._poll(expected, timeout, what)
        return Verdict(expected, observed, len(rounds), self.prober.seconds, matching_rounds=_streak(rounds),
                       control=control, not_serving=list(self.prober.not_serving))

    def _poll(self, expected: TruthTable, timeout: float, what: str, rounds_needed: int = STABLE_ROUNDS,
              probe_timeout: int = PROBE_TIMEOUT) -> tuple[TruthTable, list[bool]]:
        """Observe until `rounds_needed` observations in a row equal `expected`.

        Returns the last observation and whether each round matched. Probe errors are not
        something a policy change converges to: three observations with errors in a row end the
        wait early.
        """
        rounds: list[bool] = []
        seen: list[TruthTable] = []
        with_errors: list[bool] = []

        def settled(observed: TruthTable) -> bool:
            seen.append(observed)
            wrong = len(wrong_cells(expected, observed))
            rounds.append(not wrong)
            log.debug("%s: round %d, %d cells wrong, %.2fs", what, len(rounds), wrong, self.prober.seconds)
            with_errors.append(any(o is Outcome.ERROR for o in observed.cells.values()))
            return _streak(rounds) >= rounds_needed or with_errors[-3:] == [True] * 3

        try:
            wait_counting(f"the observed reachability to match {what}", lambda: self.prober.observe(expected, probe_timeout),
                          timeout=timeout, ready=settled, interval=0.1)
        except WaitTimeout:
            pass
        return seen[-1], rounds

    def blocks_anything(self, policies: Sequence[dict[str, Any]], timeout: float) -> bool:
        """Whether, with `policies` in force, any cell is observed blocked within `timeout`: is anything enforcing at all?"""
        self.enforce(policies)
        expected = expected_table(self.model, policies)
        try:
            wait_for("any cell to be observed blocked", lambda: self.prober.observe(expected), timeout=timeout,
                     interval=0.1, max_interval=1.0, ready=lambda t: Outcome.BLOCKED in t.cells.values())
            return True
        except WaitTimeout:
            return False

    def judge(self, verdict: Verdict) -> None:
        """Raise ProbeError where no verdict can be given, AssertionError where the cluster is wrong."""
        if verdict.control and verdict.control.unanswered:
            raise ProbeError(
                f"positive control failed: with no policy in force, {len(verdict.control.unanswered)} cells this case "
                "expects blocked did not answer, so a block could not be told from a dead target:\n"
                + "\n".join(f"  {m}" for m in verdict.control.unanswered[:20]) + "\n\nOBSERVED\n"
                + verdict.control.observed.render())
        if verdict.errors:
            raise ProbeError(f"{verdict.errors} probes could not tell allowed from blocked ('?'): no verdict\n"
                             + self.explain(verdict))
        if verdict.not_serving:
            raise ProbeError("servers stopped answering on their own ports during the case, so its blocked cells prove "
                             "nothing: " + ", ".join(verdict.not_serving))
        assert not verdict.wrong, "reachability differs from the policies in force:\n" + self.explain(verdict)
        assert verdict.matching_rounds >= STABLE_ROUNDS, (
            f"the expected table was observed in {verdict.matching_rounds} consecutive round(s) only before the timeout "
            f"({verdict.attempts} rounds in all; {STABLE_ROUNDS} are needed): enforcement is not stable")

    def explain(self, verdict: Verdict) -> str:
        """Expected, observed and diff tables and, per wrong cell, the kubectl command reproducing it."""
        wrong = verdict.wrong
        details = [f"  {m}: {self.prober.last.get((m.source, m.destination, m.port), Observation(m.observed, '')).detail}"
                   for m in wrong[:20]]
        commands = reproduce_commands(wrong[:20], self.model, self.prober.addresses, PROBE_TIMEOUT)
        cluster_wide = ([f"cluster-scoped network policies of the cluster in force: {', '.join(self.cluster.names)}"]
                        if self.cluster.names else [])
        if self.assumed:
            cluster_wide.append("the profile declares them a default deny (networkpolicy.cluster_baseline: deny), modelled as "
                                + ", ".join(p.label for p in admin.read(self.assumed)))
        if verdict.decided:
            cluster_wide.append("cells of the expected table that cluster-scoped policies decided: "
                                + ", ".join(f"{name} {n}" for name, n in verdict.decided.items()))
        return "\n\n".join([*cluster_wide,
            "EXPECTED\n" + verdict.expected.render(), "OBSERVED\n" + verdict.observed.render(),
            diff(verdict.expected, verdict.observed),
            "why, per wrong cell:\n" + "\n".join(details), "reproduce:\n" + "\n".join(commands)])


# Cluster-scoped network policies: (group, version, plural). The standard ones the tables model (netpol/admin.py);
# the vendors' they cannot read.
MODELLED_POLICY_KINDS = [
    (admin.GROUP, "v1alpha1", "adminnetworkpolicies"),
    (admin.GROUP, "v1alpha1", "baselineadminnetworkpolicies"),
    (admin.GROUP, "v1alpha2", "clusternetworkpolicies"),
]
UNREAD_POLICY_KINDS = [
    ("crd.projectcalico.org", "v1", "globalnetworkpolicies"),
    ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"),
    ("crd.antrea.io", "v1beta1", "clusternetworkpolicies"),
]


@dataclass(frozen=True)
class ClusterPolicies:
    """The cluster-scoped network policies in force: manifests the tables model, and the names of those they cannot read."""

    modelled: tuple[dict[str, Any], ...] = ()
    unread: tuple[str, ...] = ()
    served: frozenset[str] = frozenset()  # the modelled kinds' plurals the cluster serves

    @property
    def names(self) -> list[str]:
        return [*(p.label for p in admin.read(self.modelled)), *self.unread]


def cluster_network_policies(api: client.ApiClient) -> ClusterPolicies:
    """Every cluster-scoped network policy of a kind the cluster serves."""
    objects, resources = client.CustomObjectsApi(api), dynamic_client(api).resources
    modelled, unread, served = [], [], set()

    def items(group: str, version: str, plural: str) -> list[dict[str, Any]] | None:
        """The kind's objects; None where discovery does not list it (the API server answers 403, not 404, for a kind
        it does not serve to an identity that may not list it). One the run may not list may be in force: never "none"."""
        if not resources.search(group=group, api_version=version, name=plural):
            return None
        try:
            return objects.list_cluster_custom_object(group, version, plural)["items"]
        except ApiException as exc:
            if exc.status == 403:
                unread.append(f"{plural}.{group} (the run may not list them)")
                return []
            raise
    for group, version, plural in MODELLED_POLICY_KINDS:
        found = items(group, version, plural)
        if found is not None:
            modelled += found
            served.add(plural)
    for group, version, plural in UNREAD_POLICY_KINDS:
        unread += [f"{plural}.{group}/{item['metadata']['name']}" for item in items(group, version, plural) or []]
    return ClusterPolicies(tuple(modelled), tuple(unread), frozenset(served))


def _count(decisions: Mapping[Key, tuple[str, ...]]) -> dict[str, int]:
    return dict(Counter(name for names in decisions.values() for name in names))


def _streak(rounds: list[bool]) -> int:
    """How many rounds at the end matched."""
    count = 0
    for ok in reversed(rounds):
        if not ok:
            break
        count += 1
    return count


def _copy(manifest: dict[str, Any]) -> dict[str, Any]:
    return {**manifest, "metadata": {**manifest["metadata"], "labels": dict(manifest["metadata"].get("labels") or {})}}


def pods_by_node(model: Model, nodes: Sequence[str]) -> Model:
    """The model with its pods spread round-robin over `nodes`, so cells cross nodes."""
    spread = tuple(replace(p, node=nodes[i % len(nodes)]) for i, p in enumerate(model.pods))
    return replace(model, pods=spread)

