"""The command line and configuration files of each local cluster component, as plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .build import Binaries
from .layout import (BRIDGE, CGROUP_ROOT, NODE_IP, NODE_POD_CIDR, POD_CIDR, POD_GATEWAY,
                     PORTS, SERVICE_CIDR, Layout)


# Where a component says it is up (GET answers 200). The API server (readyz, with credentials)
# and containerd (its socket) are checked by the cluster itself.
HEALTH = {
    "etcd": f"http://127.0.0.1:{PORTS['etcd']}/health",
    "kube-controller-manager": f"https://127.0.0.1:{PORTS['kube-controller-manager']}/healthz",
    "kube-scheduler": f"https://127.0.0.1:{PORTS['kube-scheduler']}/healthz",
    "kubelet": f"http://127.0.0.1:{PORTS['kubelet-healthz']}/healthz",
    "kube-router": f"http://127.0.0.1:{PORTS['kube-router-health']}/healthz",
    "coredns": f"http://127.0.0.1:{PORTS['coredns-ready']}/ready",  # its Service cache has synced
}


@dataclass
class Component:
    """One host process of the cluster: how to start it and what files it needs."""

    name: str
    argv: list[str]
    files: dict[Path, str] = field(default_factory=dict)


def _flags(values: dict[str, object]) -> list[str]:
    return [f"--{key}={value}" for key, value in values.items()]


def etcd(b: Binaries, lay: Layout) -> Component:
    client = f"http://127.0.0.1:{PORTS['etcd']}"
    peer = f"http://127.0.0.1:{PORTS['etcd-peer']}"
    return Component("etcd", [str(b["etcd"]), *_flags({
        "name": "k8ssec",
        "data-dir": lay.run_dir / "etcd",
        "listen-client-urls": client,
        "advertise-client-urls": client,
        "listen-peer-urls": peer,
        "initial-advertise-peer-urls": peer,
        "initial-cluster": f"k8ssec={peer}",
        "unsafe-no-fsync": "true",   # a throwaway test cluster: speed over durability
        "log-level": "warn",
    })])


def kube_apiserver(b: Binaries, lay: Layout, hardening: dict[str, str]) -> Component:
    pki = lay.pki
    return Component("kube-apiserver", [str(b["kube-apiserver"]), *_flags({
        "etcd-servers": f"http://127.0.0.1:{PORTS['etcd']}",
        "bind-address": NODE_IP,
        "advertise-address": NODE_IP,
        "secure-port": PORTS["kube-apiserver"],
        "service-cluster-ip-range": SERVICE_CIDR,
        "client-ca-file": pki / "ca.crt",
        "tls-cert-file": pki / "apiserver.crt",
        "tls-private-key-file": pki / "apiserver.key",
        "kubelet-client-certificate": pki / "apiserver-kubelet-client.crt",
        "kubelet-client-key": pki / "apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP",
        "service-account-key-file": pki / "sa.pub",
        "service-account-signing-key-file": pki / "sa.key",
        "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
        "allow-privileged": "true",
        "profiling": "false",
        **hardening,
    })])


def _control_loop_flags(name: str, lay: Layout) -> dict:
    """Flags controller-manager and scheduler share: one kubeconfig for everything, healthz on localhost only."""
    kc = lay.kubeconfig(name)
    return {
        "kubeconfig": kc,
        "authentication-kubeconfig": kc,
        "authorization-kubeconfig": kc,
        "bind-address": "127.0.0.1",
        "secure-port": PORTS[name],
        "leader-elect": "false",
    }


def kube_controller_manager(b: Binaries, lay: Layout) -> Component:
    return Component("kube-controller-manager", [str(b["kube-controller-manager"]), *_flags({
        **_control_loop_flags("kube-controller-manager", lay),
        "use-service-account-credentials": "true",
        "service-account-private-key-file": lay.pki / "sa.key",
        "root-ca-file": lay.pki / "ca.crt",
        "cluster-signing-cert-file": lay.pki / "ca.crt",
        "cluster-signing-key-file": lay.pki / "ca.key",
        "allocate-node-cidrs": "true",
        "cluster-cidr": POD_CIDR,
        "node-cidr-mask-size": 24,
        "service-cluster-ip-range": SERVICE_CIDR,
    })])


def kube_scheduler(b: Binaries, lay: Layout) -> Component:
    return Component("kube-scheduler", [str(b["kube-scheduler"]), *_flags(_control_loop_flags("kube-scheduler", lay))])


def containerd(lay: Layout, sandbox_image: str) -> Component:
    d = lay.containerd_dir
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    config = f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{lay.containerd_socket}"

[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true  # some VMs refuse negative oom_score_adj; never go below containerd's own

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{lay.cni_conf_dir}"
"""
    conf = lay.config / "containerd.toml"
    cni = {
        "cniVersion": "0.4.0",
        "name": "k8ssec",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR, "gateway": POD_GATEWAY}]],
                    "dataDir": str(lay.run_dir / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return Component("containerd", ["containerd", "--config", str(conf)], files={
        conf: config,
        lay.cni_conf_dir / "10-k8ssec.conflist": json.dumps(cni, indent=2),
    })


def kubelet(b: Binaries, lay: Layout, minor: int) -> Component:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(lay.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "address": NODE_IP,
        "port": PORTS["kubelet"],
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": PORTS["kubelet-healthz"],
        "readOnlyPort": 0,
        "tlsCertFile": str(lay.pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(lay.pki / "kubelet.key"),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "containerRuntimeEndpoint": f"unix://{lay.containerd_socket}",
        "failSwapOn": False,
        "imageGCHighThresholdPercent": 100,   # images are built locally and cannot be pulled again
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "clusterDomain": "cluster.local",
        "clusterDNS": [NODE_IP],              # CoreDNS, a host process like the others
        "staticPodPath": str(lay.static_pods),
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        "registerNode": True,
        "syncFrequency": "10s",
        "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
    }
    if minor >= 35:
        config["failCgroupV1"] = False   # this VM has a cgroup v1 hierarchy
    path = lay.config / "kubelet.yaml"
    return Component("kubelet", [str(b["kubelet"]), *_flags({
        "config": path,
        "kubeconfig": lay.kubeconfig("kubelet"),
        "root-dir": lay.kubelet_dir,
        "hostname-override": lay.node_name,
        "node-ip": NODE_IP,
    })], files={path: yaml.safe_dump(config)})


def kube_proxy(b: Binaries, lay: Layout) -> Component:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(lay.kubeconfig("kube-proxy"))},
        "hostnameOverride": lay.node_name,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_CIDR,
        "metricsBindAddress": f"127.0.0.1:{PORTS['kube-proxy-metrics']}",
        "healthzBindAddress": f"127.0.0.1:{PORTS['kube-proxy-healthz']}",
        "conntrack": {"maxPerCore": 0},   # leave the host's conntrack sysctls alone
    }
    path = lay.config / "kube-proxy.yaml"
    return Component("kube-proxy", [str(b["kube-proxy"]), f"--config={path}"], files={path: yaml.safe_dump(config)})


def kube_router(b: Binaries, lay: Layout) -> Component:
    return Component("kube-router", [str(b["kube-router"]), *_flags({
        "kubeconfig": lay.kubeconfig("kube-router"),
        "hostname-override": lay.node_name,
        "run-firewall": "true",
        "run-router": "false",
        "run-service-proxy": "false",
        "enable-cni": "false",
        "service-cluster-ip-range": SERVICE_CIDR,
        "health-port": PORTS["kube-router-health"],
        "iptables-sync-period": "30s",
    })])


def coredns(b: Binaries, lay: Layout) -> Component:
    """Cluster DNS on the node's address, as the kubelet tells pods: Service names resolve as on any cluster."""
    corefile = lay.config / "Corefile"
    text = f""".:53 {{
    bind {NODE_IP}
    errors
    ready 127.0.0.1:{PORTS["coredns-ready"]}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {lay.kubeconfig("coredns")}
    }}
    forward . /etc/resolv.conf
}}
"""
    return Component("coredns", [str(b["coredns"]), "-conf", str(corefile)], files={corefile: text})


def node_agent_static_pod(image: str) -> dict:
    """A privileged hostNetwork pod in kube-system, like a CNI agent: PRIV-2 checks it keeps running."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "k8ssec-node-agent", "namespace": "kube-system", "labels": {"app.kubernetes.io/name": "k8ssec-node-agent"}},
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "agent",
                "image": image,
                "imagePullPolicy": "Never",
                "securityContext": {"privileged": True},
            }],
        },
    }


def plan(b: Binaries, lay: Layout, hardening: dict, minor: int, pause_image: str) -> dict[str, Component]:
    """Every component of the local cluster, by name."""
    return {
        "etcd": etcd(b, lay),
        "kube-apiserver": kube_apiserver(b, lay, hardening),
        "kube-controller-manager": kube_controller_manager(b, lay),
        "kube-scheduler": kube_scheduler(b, lay),
        "containerd": containerd(lay, pause_image),
        "kubelet": kubelet(b, lay, minor),
        "kube-proxy": kube_proxy(b, lay),
        "kube-router": kube_router(b, lay),
        "coredns": coredns(b, lay),
    }
