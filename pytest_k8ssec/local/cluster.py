"""The local cluster's lifecycle: start its processes in order, wait until ready, stop and clean.

State lives in one run directory (`cluster.json` holds PIDs and what to restore), so `status`
and `down` work from another process, and a crashed cluster can still be removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import urllib3
import yaml
from cryptography.hazmat.primitives import serialization
from kubernetes import client
from kubernetes.client.rest import ApiException

from .. import apiserver_config, rbac
from ..handle import ClusterHandle, Images
from ..errors import K8sSecError
from ..kube import api_client
from ..pki import CertificateAuthority, cert_pem, key_pem, kubeconfig, new_key, write_private
from ..profile import Profile
from ..settings import cache_dir
from ..waits import WaitTimeout, wait_for
from . import components, hostnet, images
from .build import Binaries, Builder
from .layout import API_SERVICE_IP, NODE_IP, PORTS, Layout

log = logging.getLogger(__name__)

APT_PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "iptables": "iptables",
    "ipset": "ipset",
    "conntrack": "conntrack",
    "ip": "iproute2",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/lib/cni/host-local": "containernetworking-plugins",
    "/usr/lib/cni/loopback": "containernetworking-plugins",
    "/usr/lib/cni/portmap": "containernetworking-plugins",
}

# Who each component is to the API server (CN, O).
IDENTITIES = {
    "admin": ("k8ssec-admin", ["system:masters"]),
    "kube-controller-manager": ("system:kube-controller-manager", []),
    "kube-scheduler": ("system:kube-scheduler", []),
    "kube-proxy": ("system:kube-proxy", []),
    "kube-router": ("system:kube-router", []),
    "coredns": ("system:k8ssec-coredns", []),
}
# Rights of the components that have no bootstrap role of their own: (resources by API group, extra rules).
WATCHES = {
    "kube-router": {"": ["namespaces", "pods", "services", "nodes", "endpoints"], "networking.k8s.io": ["networkpolicies"],
                    "discovery.k8s.io": ["endpointslices"]},
    "coredns": {"": ["namespaces", "services"], "discovery.k8s.io": ["endpointslices"]},
}
START_ORDER = ["etcd", "kube-apiserver", "coredns", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet",
               "kube-proxy", "kube-router"]
NETPOL_ENFORCER = "kube-router"
CLUSTER_DNS = "coredns"
# Negative controls stop these on purpose; the cluster is still up (enforcing no policy, resolving no name).
OPTIONAL = {NETPOL_ENFORCER, CLUSTER_DNS}
# Components that watch the API server. After it restarts their informers back off for up to a
# minute (measured: a namespace waited 62 s for its default service account), so they restart with it.
API_CLIENTS = [CLUSTER_DNS, "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", NETPOL_ENFORCER]


def missing_host_tools() -> list[str]:
    """Debian packages the local cluster needs that are not installed."""
    missing = {pkg for tool, pkg in APT_PACKAGES.items()
               if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))}
    missing.update(images.missing_host_binaries())
    return sorted(missing)


def ports_in_use() -> list[str]:
    busy = []
    for name, port in PORTS.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy


@dataclass
class LocalCluster:
    """A single-node cluster of host processes below `run_dir`, built from `cache`."""

    run_dir: Path
    cache: Path
    k8s_version: str

    def __post_init__(self) -> None:
        self.layout = Layout(self.run_dir)
        self.timings: dict[str, float] = {}

    # -- state ---------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads(self.layout.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict) -> None:
        self.layout.state_file.write_text(json.dumps(state, indent=2))

    def pids(self) -> dict[str, int]:
        """The recorded process of each component."""
        return dict(self._state().get("pids", {}))

    def peak_memory_mib(self) -> dict[str, float]:
        """Each component's peak resident memory so far (VmHWM), for the benchmarks."""
        peaks = {}
        for name, pid in self.pids().items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
            peaks[name] = kib / 1024
        return peaks

    def running(self) -> dict[str, bool]:
        """Which recorded components are alive."""
        return {name: _alive(pid) for name, pid in self.pids().items()}

    def is_up(self) -> bool:
        alive = self.running()
        required = set(START_ORDER) - OPTIONAL
        return all(alive.values()) and required <= set(alive) and self._api_ready()

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
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.layout.pki, self.layout.logs, self.layout.config, self.layout.static_pods, self.layout.cni_conf_dir):
            d.mkdir(parents=True, exist_ok=True)
        state = {"version": self.k8s_version, "pids": {}, "started": time.time()}
        state["host"] = hostnet.set_up(self.run_dir)
        self._save(state)
        try:
            self._write_pki()
            self._start_all(binaries, profile, state)
        except BaseException:
            self._print_logs()
            self.down(quiet=True)
            raise
        self.timings["start to ready"] = time.monotonic() - start
        state["ready_seconds"] = self.timings["start to ready"]
        self._save(state)
        return self.handle()

    def down(self, quiet: bool = False) -> None:
        """Stop every component and remove all it made on the machine.

        The machine-wide parts (bridge, cgroup root, iptables chains) are only torn down when this
        run directory records a cluster: a stray `down` elsewhere must not break a running one.
        """
        state = self._state()
        if not state:
            return
        start = time.monotonic()
        for name in reversed(START_ORDER):
            pid = state.get("pids", {}).get(name)
            if pid and _alive(pid):
                _stop(pid)
        binaries = self.cache / "bin" / f"cluster-{state.get('version', self.k8s_version)}"
        cleanup = [
            [str(binaries / "kube-proxy"), "--cleanup"],
            [str(binaries / "kube-router"), "--cleanup-config"],
        ]
        hostnet.tear_down(self.run_dir, state.get("host", {}), cleanup)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.timings["stop"] = time.monotonic() - start
        if not quiet:
            log.info("local cluster stopped in %.1fs", self.timings["stop"])

    def handle(self) -> ClusterHandle:
        state = self._state()
        return ClusterHandle(
            provider="local",
            kubeconfig=self.layout.admin_kubeconfig,
            created_by_plugin=True,
            audit_log=self.layout.audit_log,
            node_names=[self.layout.node_name],
            images=Images(
                busybox=images.IMAGES["busybox"].reference,
                busybox_nonroot=images.IMAGES["busybox-nonroot"].reference,
                httpd=images.IMAGES["httpd"].reference,
                root_user=images.IMAGES["busybox"].reference,
                pull_policy="Never",
                httpd_command=(),
            ),
            netpol_enforcer=NETPOL_ENFORCER if self.running().get(NETPOL_ENFORCER) else None,
            details={"run_dir": str(self.run_dir), "version": state.get("version", self.k8s_version)},
        )

    # -- internals -----------------------------------------------------------------------
    def _write_pki(self) -> None:
        pki, lay = self.layout.pki, self.layout
        ca = CertificateAuthority.create("k8ssec-local-ca")
        write_private(pki / "ca.key", key_pem(ca.key))
        (pki / "ca.crt").write_bytes(cert_pem(ca.cert))
        serving = [NODE_IP, API_SERVICE_IP, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
        ca.write_pair(pki, "apiserver", *ca.issue("kube-apiserver", server_names=serving, client=False))
        ca.write_pair(pki, "apiserver-kubelet-client", *ca.issue("kube-apiserver-kubelet-client", ["system:masters"]))
        ca.write_pair(pki, "kubelet", *ca.issue(lay.node_name, server_names=[NODE_IP, lay.node_name], client=False))
        sa = new_key()
        write_private(pki / "sa.key", key_pem(sa))
        (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        identities = dict(IDENTITIES, kubelet=(f"system:node:{lay.node_name}", ["system:nodes"]))
        for component, (cn, groups) in identities.items():
            key, cert = ca.issue(cn, groups)
            text = kubeconfig(lay.api_server, cert_pem(ca.cert), cn, cert_pem(cert), key_pem(key))
            write_private(lay.admin_kubeconfig if component == "admin" else lay.kubeconfig(component), text.encode())

    def _start_all(self, b: Binaries, profile: Profile, state: dict) -> None:
        lay = self.layout
        audit_policy = lay.config / "audit-policy.yaml"
        admission = lay.config / "admission.yaml"
        audit_policy.write_text(yaml.safe_dump(apiserver_config.audit_policy(profile)))
        admission.write_text(yaml.safe_dump(apiserver_config.admission_configuration()))
        hardening = apiserver_config.hardening_flags(str(audit_policy), str(lay.audit_log), str(admission))
        minor = int(self.k8s_version.split(".")[1])
        image_files = images.build_all(self.cache / "images")
        plan = {
            "etcd": components.etcd(b, lay),
            "kube-apiserver": components.kube_apiserver(b, lay, hardening),
            "kube-controller-manager": components.kube_controller_manager(b, lay),
            "kube-scheduler": components.kube_scheduler(b, lay),
            "containerd": components.containerd(lay, images.IMAGES["pause"].reference),
            "kubelet": components.kubelet(b, lay, minor),
            "kube-proxy": components.kube_proxy(b, lay),
            "kube-router": components.kube_router(b, lay),
            "coredns": components.coredns(b, lay),
        }
        for name in START_ORDER:
            comp = plan[name]
            for path, text in comp.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            state["pids"][name] = self._spawn(comp.name, comp.argv)
            state.setdefault("argv", {})[name] = comp.argv
            self._save(state)
            self._wait_started(name, state)
            if name == "kube-apiserver":
                self._bootstrap_rbac()
            if name == "kubelet":
                self._wait_node_registered(state)
            if name == "containerd":
                images.import_images(list(image_files.values()), str(lay.containerd_socket))
                (lay.static_pods / "node-agent.yaml").write_text(
                    yaml.safe_dump(components.node_agent_static_pod(images.IMAGES["busybox"].reference)))
        self._wait_cluster_ready(state)

    def _spawn(self, name: str, argv: list[str]) -> int:
        log_file = open(self.layout.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.run_dir)
        log_file.close()
        return proc.pid

    # -- changing a running cluster (negative controls break it on purpose) ----------------
    def stop_component(self, name: str) -> None:
        """Stop one component on purpose (the cluster stays up without an optional one).

        Stopping the NetworkPolicy enforcer also removes its firewall rules, so nothing enforces
        policies any more: the state a negative control needs.
        """
        state = self._state()
        pid = state["pids"].pop(name, None)
        if pid:
            _stop(pid)
        if name == NETPOL_ENFORCER:
            hostnet.remove_chains(hostnet.KUBE_ROUTER_CHAINS)
            hostnet.remove_ipsets()
        self._save(state)

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
        state = self._state()
        replaced = {arg.split("=", 1)[0] for arg in extra_args}
        argv = [arg for arg in state["argv"][name] if arg.split("=", 1)[0] not in replaced] + list(extra_args)
        state["pids"][name] = self._spawn(name, argv)
        self._save(state)
        self._wait_started(name, state)
        for client_name in clients:
            self.start_component(client_name)

    def write_audit_policy(self, policy: dict) -> None:
        """Replace the audit policy file; the API server reads it when (re)started."""
        (self.layout.config / "audit-policy.yaml").write_text(yaml.safe_dump(policy))

    def _check_alive(self, state: dict) -> None:
        dead = [name for name, pid in state["pids"].items() if not _alive(pid)]
        if dead:
            raise K8sSecError(f"local cluster component {dead[0]} exited; its log: {self.layout.logs / (dead[0] + '.log')}\n"
                              + self.log_tail(dead[0]))

    def _wait_started(self, name: str, state: dict) -> None:
        checks = {
            "etcd": lambda: _http_ok(f"http://127.0.0.1:{PORTS['etcd']}/health"),
            "kube-apiserver": self._api_ready,
            # self-signed serving certificates; /healthz is always allowed without credentials
            "kube-controller-manager": lambda: _http_ok(f"https://127.0.0.1:{PORTS['kube-controller-manager']}/healthz",
                                                        _UNVERIFIED),
            "kube-scheduler": lambda: _http_ok(f"https://127.0.0.1:{PORTS['kube-scheduler']}/healthz", _UNVERIFIED),
            "containerd": lambda: self.layout.containerd_socket.exists(),
            "kubelet": lambda: _http_ok(f"http://127.0.0.1:{PORTS['kubelet-healthz']}/healthz"),
            "kube-router": lambda: _http_ok(f"http://127.0.0.1:{PORTS['kube-router-health']}/healthz"),
            "coredns": lambda: _http_ok(f"http://127.0.0.1:{PORTS['coredns-ready']}/ready"),  # its Service cache synced
        }
        check = checks.get(name)
        if not check:
            return

        def probe() -> bool:
            self._check_alive(state)
            return check()

        started = time.monotonic()
        wait_for(f"{name} of the local cluster to answer", probe, timeout=90, interval=0.1, max_interval=0.5)
        self.timings[f"start {name}"] = time.monotonic() - started

    def _api_ready(self) -> bool:
        if not self.layout.admin_kubeconfig.exists():
            return False
        try:
            return self._admin().rest_client.request("GET", f"{self.layout.api_server}/readyz", _request_timeout=2).status == 200
        except (ApiException, urllib3.exceptions.HTTPError):
            return False

    def _admin(self) -> client.ApiClient:
        """The cluster's admin, for a server that may still be starting (the waits retry, not the client)."""
        return api_client(str(self.layout.admin_kubeconfig), retry=False)

    def _bootstrap_rbac(self) -> None:
        """Read rights for the components that have no bootstrap role of their own (kube-router, CoreDNS)."""
        api = client.RbacAuthorizationV1Api(self._admin())
        for component, watches in WATCHES.items():
            name, user = f"k8ssec:{component}", IDENTITIES[component][0]
            rules = [{"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
                     for group, resources in watches.items()]
            rules.append({"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]})
            objects = [(api.create_cluster_role, rbac.role(name, rules)),
                       (api.create_cluster_role_binding, rbac.binding(name, "ClusterRole", name, [rbac.user(user)]))]
            for create, manifest in objects:
                wait_for(f"the API server to accept {manifest['kind']} {name}", lambda: _create(create, manifest),
                         timeout=30, retry_on=(ApiException, urllib3.exceptions.HTTPError))

    def _node_ready(self, state: dict) -> str | None:
        """The node's Ready condition ("True", "False", "Unknown", "" before it has one), or None while it is not registered."""
        self._check_alive(state)
        try:
            node = client.CoreV1Api(self._admin()).read_node(self.layout.node_name)
        except ApiException:
            return None
        return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "")

    def _wait_node_registered(self, state: dict) -> None:
        """kube-router exits at once if its Node object does not exist yet; the kubelet's healthz answers earlier."""
        started = time.monotonic()
        wait_for(f"the kubelet to register node {self.layout.node_name}", lambda: self._node_ready(state), timeout=60,
                 interval=0.1, max_interval=0.5, ready=lambda status: status is not None)
        self.timings["node registered"] = time.monotonic() - started

    def _wait_cluster_ready(self, state: dict) -> None:
        started = time.monotonic()
        wait_for(f"node {self.layout.node_name} to be Ready", lambda: self._node_ready(state), timeout=120,
                 ready=lambda status: status == "True")
        core = client.CoreV1Api(self._admin())
        wait_for("the default service account in namespace default",
                 lambda: core.read_namespaced_service_account("default", "default"), timeout=60, retry_on=(ApiException,))
        self.timings["node ready"] = time.monotonic() - started

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.layout.logs / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(f"  {name}| {line}" for line in text[-lines:])

    def _print_logs(self) -> None:
        for name in START_ORDER:
            if (self.layout.logs / f"{name}.log").exists():
                log.error("last lines of %s:\n%s", name, self.log_tail(name, 10))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _stop(pid: int, grace: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_for(f"process {pid} to exit", lambda: not _alive(pid), timeout=grace, interval=0.05, max_interval=0.2)
    except WaitTimeout:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_UNVERIFIED = ssl._create_unverified_context()


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _create(create, manifest: dict) -> bool:
    """Create an object; one that exists already (a restart) is fine."""
    try:
        create(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return True


def default_run_dir() -> Path:
    """One local cluster per machine (its ports are fixed), kept below the cache directory."""
    return cache_dir() / "local-cluster"
