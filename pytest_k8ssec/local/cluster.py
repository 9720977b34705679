"""The local cluster's lifecycle: start its processes in order, wait until ready, stop and clean.

It delegates: `preflight` (packages, ports), `identities` (PKI, kubeconfigs, component RBAC),
`components` (command lines, config files, health endpoints), `processes` (state, spawning,
stopping), `health` (the waits), `hostnet` (the machine's network and cgroups). Upgrading it in place is `upgrade`'s.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from .. import apiserver_config, progress
from ..errors import K8sSecError
from ..handle import ClusterHandle, Images
from ..profile import Profile
from ..settings import cache_dir
from ..waits import wait_for
from . import components, health, hostnet, images, identities, processes
from .build import Binaries, Builder
from .layout import Layout
from .preflight import missing_host_tools, ports_in_use
from .processes import State

log = logging.getLogger(__name__)

START_ORDER = ["etcd", "kube-apiserver", "coredns", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet",
               "kube-proxy", "kube-router"]
NETPOL_ENFORCER = "kube-router"
CLUSTER_DNS = "coredns"
# Negative controls stop these on purpose; the cluster is still up (enforcing no policy, resolving no name).
OPTIONAL = {NETPOL_ENFORCER, CLUSTER_DNS}
# Components that watch the API server. After it restarts their informers back off for up to a
# minute (measured: a namespace waited 62 s for its default service account), so they restart with it.
API_CLIENTS = [CLUSTER_DNS, "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", NETPOL_ENFORCER]


@dataclass
class LocalCluster:
    """A single-node cluster of host processes below `run_dir`, built from `cache`."""

    run_dir: Path
    cache: Path
    k8s_version: str

    def __post_init__(self) -> None:
        self.layout = Layout(self.run_dir)
        self.timings: dict[str, float] = {}

    # -- what is running -----------------------------------------------------------------
    def state(self) -> State:
        return State.load(self.layout.state_file) or State()

    def pids(self) -> dict[str, int]:
        """The recorded process of each component."""
        return dict(self.state().pids)

    def peak_memory_mib(self) -> dict[str, float]:
        return processes.peak_memory_mib(self.pids())

    def running(self) -> dict[str, bool]:
        """Which recorded components are alive."""
        return {name: processes.alive(pid) for name, pid in self.pids().items()}

    def is_up(self) -> bool:
        alive = self.running()
        return all(alive.values()) and set(START_ORDER) - OPTIONAL <= set(alive) and health.api_ready(self.layout)

    # -- lifecycle -----------------------------------------------------------------------
    def build(self) -> Binaries:
        builder = Builder(self.cache)
        binaries = builder.all(self.k8s_version)
        self.timings.update({f"build {k}": v for k, v in builder.timings.items()})
        return binaries

    def up(self, profile: Profile) -> ClusterHandle:
        """Build what is missing, start every component, wait until the cluster is ready."""
        missing = missing_host_tools()
        if missing:
            raise K8sSecError(f"the local cluster needs Debian packages that are missing: apt-get install {' '.join(missing)}")
        if self.is_up():
            log.info("local cluster already running in %s", self.run_dir)
            return self.handle()
        binaries = self.build()
        self.down(quiet=True)  # whatever a crashed earlier run left
        busy = ports_in_use()
        if busy:
            raise K8sSecError(f"ports needed by the local cluster are in use: {', '.join(busy)}; stop what holds them "
                              "(another cluster? `python -m pytest_k8ssec.local down`)")
        start = time.monotonic()
        lay = self.layout
        for d in (self.run_dir, lay.pki, lay.logs, lay.config, lay.static_pods, lay.cni_conf_dir):
            d.mkdir(parents=True, exist_ok=True)
        state = State(version=self.k8s_version, started=time.time())
        state.host = hostnet.set_up(self.run_dir)
        state.save(lay.state_file)
        try:
            identities.write_pki(lay)
            self._start_all(binaries, profile, state)
        except BaseException:
            for name in START_ORDER:
                if (lay.logs / f"{name}.log").exists():
                    log.error("last lines of %s:\n%s", name, self.log_tail(name, 10))
            self.down(quiet=True)
            raise
        self.timings["start to ready"] = state.ready_seconds = time.monotonic() - start
        state.save(lay.state_file)
        return self.handle()

    def down(self, quiet: bool = False) -> None:
        """Stop every component and remove all it made on the machine.

        The machine-wide parts (bridge, cgroup root, iptables chains) are only torn down when this
        run directory records a cluster: a stray `down` elsewhere must not break a running one.
        """
        state = State.load(self.layout.state_file)
        if state is None:
            return
        start = time.monotonic()
        for name in reversed(START_ORDER):
            pid = state.pids.get(name)
            if pid and processes.alive(pid):
                processes.stop(pid)
        binaries = self.cache / "bin" / f"cluster-{state.version or self.k8s_version}"
        cleanup = [[str(binaries / "kube-proxy"), "--cleanup"], [str(binaries / "kube-router"), "--cleanup-config"]]
        hostnet.tear_down(self.run_dir, state.host, cleanup)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.timings["stop"] = time.monotonic() - start
        if not quiet:
            log.info("local cluster stopped in %.1fs", self.timings["stop"])

    def handle(self) -> ClusterHandle:
        ref = {name: image.reference for name, image in images.IMAGES.items()}
        return ClusterHandle(
            provider="local",
            kubeconfig=self.layout.admin_kubeconfig,
            created_by_plugin=True,
            audit_log=self.layout.audit_log,
            node_names=[self.layout.node_name],
            images=Images(busybox=ref["busybox"], busybox_nonroot=ref["busybox-nonroot"], httpd=ref["httpd"],
                          root_user=ref["busybox"], pull_policy="Never", httpd_command=()),
            netpol_enforcer=NETPOL_ENFORCER if self.running().get(NETPOL_ENFORCER) else None,
            details={"run_dir": str(self.run_dir), "version": self.state().version or self.k8s_version},
        )

    def plan(self, b: Binaries) -> dict[str, components.Component]:
        """Each component's command line and files for these binaries (flags differ by minor version)."""
        lay = self.layout
        hardening = apiserver_config.hardening_flags(str(lay.audit_policy), str(lay.audit_log), str(lay.admission_config))
        return components.plan(b, lay, hardening, int(b.version.split(".")[1]), images.IMAGES["pause"].reference)

    def _start_all(self, b: Binaries, profile: Profile, state: State) -> None:
        lay = self.layout
        lay.audit_policy.write_text(yaml.safe_dump(apiserver_config.audit_policy(profile)))
        lay.admission_config.write_text(yaml.safe_dump(apiserver_config.admission_configuration()))
        image_files = images.build_all(self.cache / "images")
        plan = self.plan(b)
        for name in START_ORDER:
            comp = plan[name]
            for path, text in comp.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            state.pids[name] = processes.spawn(comp.argv, lay.logs / f"{name}.log", self.run_dir)
            state.argv[name] = comp.argv
            state.save(lay.state_file)
            self.timings[f"start {name}"] = health.wait_started(name, lay, state)
            progress.say(f"local cluster: {name} up in {self.timings[f'start {name}']:.1f}s")
            if name == "kube-apiserver":
                identities.bootstrap_rbac(health.admin(lay))
            if name == "kubelet":
                self.timings["node registered"] = health.wait_node("registered", lay, state, lambda s: s is not None, 60)
            if name == "containerd":
                images.import_images(list(image_files.values()), str(lay.containerd_socket))
                (lay.static_pods / "node-agent.yaml").write_text(
                    yaml.safe_dump(components.node_agent_static_pod(images.IMAGES["busybox"].reference)))
        self.timings["node ready"] = health.wait_node("Ready", lay, state, lambda s: s == "True", 120)
        progress.say("local cluster: node Ready")
        core = client.CoreV1Api(health.admin(lay))
        wait_for("the default service account in namespace default",
                 lambda: core.read_namespaced_service_account("default", "default"), timeout=60, retry_on=(ApiException,))

    # -- changing a running cluster (negative controls break it on purpose) ----------------
    def stop_component(self, name: str) -> None:
        """Stop one component on purpose (the cluster stays up without an optional one).

        Stopping the NetworkPolicy enforcer also removes its firewall rules, so nothing enforces
        policies any more: the state a negative control needs.
        """
        state = self.state()
        pid = state.pids.pop(name, None)
        if pid:
            processes.stop(pid)
        if name == NETPOL_ENFORCER:
            hostnet.remove_chains(hostnet.KUBE_ROUTER_CHAINS)
            hostnet.remove_ipsets()
        state.save(self.layout.state_file)

    def start_component(self, name: str, extra_args: list[str] = ()) -> None:  # type: ignore[assignment]
        """(Re)start one component with its recorded command line, `extra_args` (--flag=value) replacing its flags.

        The API server's running clients are stopped first and started after it: a client that
        is still starting when the server goes away exits.
        """
        running = self.pids()
        clients = [c for c in API_CLIENTS if c in running] if name == "kube-apiserver" else []
        for client_name in clients:
            self.stop_component(client_name)
        self.stop_component(name)
        state = self.state()
        replaced = {arg.split("=", 1)[0] for arg in extra_args}
        argv = [arg for arg in state.argv[name] if arg.split("=", 1)[0] not in replaced] + list(extra_args)
        state.pids[name] = processes.spawn(argv, self.layout.logs / f"{name}.log", self.run_dir)
        state.save(self.layout.state_file)
        health.wait_started(name, self.layout, state)
        if name == "kubelet":
            health.wait_kubelet_synced(self.layout, state)
        for client_name in clients:
            self.start_component(client_name)

    def write_audit_policy(self, policy: dict) -> None:
        """Replace the audit policy file; the API server reads it when (re)started."""
        self.layout.audit_policy.write_text(yaml.safe_dump(policy))

    def log_tail(self, name: str, lines: int = 20) -> str:
        return processes.log_tail(self.layout.logs / f"{name}.log", name, lines)


def default_run_dir() -> Path:
    """One local cluster per machine (its ports are fixed), kept below the cache directory."""
    return cache_dir() / "local-cluster"
