"""Where the local cluster keeps its files, and the addresses it uses on the machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NODE_IP = "10.250.0.1"          # on an interface of our own: nothing listens on the real NICs
NODE_DEVICE = "k8ssec0"
BRIDGE = "k8ssec-br0"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
CGROUP_ROOT = "k8ssec"           # every pod's cgroup lives below /sys/fs/cgroup/<controller>/k8ssec

PORTS = {
    "etcd": 2379,
    "etcd-peer": 2380,
    "kube-apiserver": 6443,
    "kube-controller-manager": 10257,
    "kube-scheduler": 10259,
    "kubelet": 10250,
    "kubelet-healthz": 10248,
    "kube-proxy-metrics": 10249,
    "kube-proxy-healthz": 10256,
    "kube-router-health": 20244,
    "coredns-ready": 20253,
}


@dataclass(frozen=True)
class Layout:
    """Paths below one run directory; removing it removes every file the cluster wrote."""

    run_dir: Path
    node_name: str = "k8ssec-node"

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def config(self) -> Path:
        return self.run_dir / "config"

    @property
    def audit_policy(self) -> Path:
        return self.config / "audit-policy.yaml"

    @property
    def admission_config(self) -> Path:
        return self.config / "admission.yaml"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "cluster.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.run_dir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    @property
    def containerd_dir(self) -> Path:
        return self.run_dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.run_dir / "kubelet"

    @property
    def static_pods(self) -> Path:
        return self.config / "manifests"

    @property
    def cni_conf_dir(self) -> Path:
        return self.config / "cni"

    @property
    def api_server(self) -> str:
        return f"https://{NODE_IP}:{PORTS['kube-apiserver']}"

    def kubeconfig(self, component: str) -> Path:
        return self.config / f"{component}.kubeconfig"
