"""The `kind` provider: a kind cluster (through pytest-kind) with Calico, hardened like the seeds' lab.

The pure parts (node image, kind config, kubeadm patch, node files) are unit-tested; the rest
needs Docker and a registry, which is what users of this provider have (GitHub Actions, laptops).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import yaml

from .. import apiserver_config, progress
from ..errors import K8sSecError
from ..profile import Profile
from ..settings import Settings, cache_dir
from ..handle import ClusterHandle

log = logging.getLogger(__name__)

KIND_VERSION = "v0.33.0"
KIND_URL = "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-linux-amd64"
# The node images published with KIND_VERSION, one per Kubernetes minor (digest-pinned).
NODE_IMAGES = {
    "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}
CALICO_VERSION = "v3.31.3"
# VXLAN, not the BIRD manifest: BIRD needs Calico's own fork, which cannot be built from source on
# the machines this provider is tested on (Debian's bird rejects Calico's config), so the default
# is the manifest that has been seen working.
CALICO_MANIFEST = f"https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/calico-vxlan.yaml"
MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io", "quay.io")
KIND_NETWORK = "kind"
POD_SUBNET = "192.168.0.0/16"  # Calico's default IP pool
KEPT_NAME = "k8s-sec"  # --k8s-sec-keep-cluster creates it once and reuses it on later runs

# Where the node container sees the API server's files; the same path inside the API server pod.
NODE_CONFIG_DIR = "/etc/kubernetes/k8s-sec"
NODE_LOG_DIR = "/var/log/kubernetes"
AUDIT_LOG = f"{NODE_LOG_DIR}/k8s-sec-audit.log"


def docker_available() -> tuple[bool, str]:
    """Whether a Docker daemon answers, and if not, why (for `auto` and for the error line)."""
    if not shutil.which("docker"):
        return False, "Docker is not installed (no `docker` command)"
    try:
        out = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                             capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return False, "Docker does not answer (`docker info` took over 15s)"
    if out.returncode != 0 or not out.stdout.strip():
        first = (out.stderr.strip().splitlines() or ["no output"])[0]
        return False, f"Docker is not running (`docker info`: {first})"
    return True, f"Docker {out.stdout.strip()} answers"


def _docker_ok(*args: str) -> bool:
    return subprocess.run(["docker", *args], capture_output=True).returncode == 0


def minor_of(version: str) -> str:
    """'v1.37.2' -> '1.37'."""
    parts = version.lstrip("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise K8sSecError(f"--k8s-sec-k8s-version {version!r} is not a Kubernetes version like v1.37.2")
    return f"{parts[0]}.{parts[1]}"


def node_image(k8s_version: str, override: str | None) -> str:
    """The kind node image: the override, else the image pinned for the version's minor."""
    if override:
        return override
    minor = minor_of(k8s_version)
    if minor not in NODE_IMAGES:
        raise K8sSecError(f"kind {KIND_VERSION} has no pinned node image for Kubernetes {minor} (pinned: "
                          f"{', '.join(sorted(NODE_IMAGES))}): pass --k8s-sec-kind-image IMAGE")
    return NODE_IMAGES[minor]


def kubeadm_patch(minor: str) -> dict[str, Any]:
    """The ClusterConfiguration patch: the hardening flags and the volumes holding their files.

    kubeadm v1beta4 (Kubernetes 1.31 and later) takes extraArgs as a name/value list, v1beta3 as a map.
    """
    flags = apiserver_config.hardening_flags(f"{NODE_CONFIG_DIR}/audit-policy.yaml", AUDIT_LOG,
                                             f"{NODE_CONFIG_DIR}/admission.yaml")
    v1beta4 = tuple(int(p) for p in minor.split(".")) >= (1, 31)
    extra_args: Any = [{"name": k, "value": v} for k, v in flags.items()] if v1beta4 else flags
    return {
        "kind": "ClusterConfiguration",
        "apiServer": {
            "extraArgs": extra_args,
            "extraVolumes": [
                {"name": "k8s-sec-config", "hostPath": NODE_CONFIG_DIR, "mountPath": NODE_CONFIG_DIR,
                 "readOnly": True, "pathType": "Directory"},
                {"name": "k8s-sec-audit-log", "hostPath": NODE_LOG_DIR, "mountPath": NODE_LOG_DIR,
                 "readOnly": False, "pathType": "DirectoryOrCreate"},
            ],
        },
    }


def node_files(profile: Profile) -> dict[str, str]:
    """The files the API server reads, by name in NODE_CONFIG_DIR."""
    return {
        "audit-policy.yaml": yaml.safe_dump(apiserver_config.audit_policy(profile), sort_keys=False),
        "admission.yaml": yaml.safe_dump(apiserver_config.admission_configuration(), sort_keys=False),
    }


def kind_config(minor: str, workers: int, host_config_dir: Path, mirror: str | None = None) -> dict[str, Any]:
    """The kind Cluster config: no default CNI, Calico's pod subnet, the API server's files mounted.

    `mirror` (HOST[:PORT], reachable from inside the nodes) serves docker.io, registry.k8s.io and
    quay.io. From 1.35 the kubelet refuses cgroup v1 hosts unless told otherwise.
    """
    control_plane = {
        "role": "control-plane",
        "extraMounts": [{"hostPath": str(host_config_dir), "containerPath": NODE_CONFIG_DIR, "readOnly": True}],
        "kubeadmConfigPatches": [yaml.safe_dump(kubeadm_patch(minor), sort_keys=False)],
    }
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"disableDefaultCNI": True, "podSubnet": POD_SUBNET},
        "nodes": [control_plane] + [{"role": "worker"} for _ in range(workers)],
    }
    if tuple(int(p) for p in minor.split(".")) >= (1, 35):
        config["kubeadmConfigPatches"] = [yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False})]
    if mirror:
        config["containerdConfigPatches"] = ["\n".join(
            f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]\n  endpoint = ["http://{mirror}"]'
            for registry in MIRRORED_REGISTRIES)]
    return config


def kind_binary(directory: Path) -> Path:
    """The pinned kind binary, downloaded once into the cache."""
    path = directory / f"kind-{KIND_VERSION}"
    if path.exists():
        return path
    url = os.environ.get("KIND_DOWNLOAD_URL") or KIND_URL.format(version=KIND_VERSION)
    content = _fetch(url, f"download kind {KIND_VERSION} from {url}",
                     f"put a kind binary at {path} or set KIND_DOWNLOAD_URL")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.chmod(0o755)
    tmp.rename(path)
    return path


def _fetch(url: str, what: str, remedy: str) -> bytes:
    """GET a URL; a failure is one line: what could not be done, why, and what to do instead."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise K8sSecError(f"could not {what} ({getattr(exc, 'reason', None) or exc}): {remedy}") from None


def calico_manifest(source: str | None) -> list[dict[str, Any]]:
    """Calico's objects, from the pinned release, another URL, or a local file (air-gapped users)."""
    source = source or CALICO_MANIFEST
    if source.startswith(("http://", "https://")):
        text = _fetch(source, f"fetch the Calico manifest {source}",
                      "pass --k8s-sec-calico-manifest with a reachable URL or a local file").decode()
    else:
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise K8sSecError(f"could not read the Calico manifest {source}: {exc.strerror}") from None
    return [doc for doc in yaml.safe_load_all(text) if doc]


def create_cluster(kind: Path, name: str, image: str, kubeconfig: Path, config_file: Path) -> None:
    """`kind create cluster`, unless it exists; its error lines go into the error (pytest hides its output)."""
    existing = subprocess.run([str(kind), "get", "clusters"], capture_output=True, text=True).stdout.split()
    if name in existing:
        return
    progress.say(f"creating kind cluster {name} from {image}")
    out = progress.run([str(kind), "create", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}",
                        f"--image={image}", f"--config={config_file}"], "kind create cluster")
    if out.returncode != 0:
        text = out.stderr + out.stdout
        errors = [line.strip() for line in text.splitlines() if "ERROR" in line or "rror response" in line]
        hint = (f"check that Docker can pull {image}, or pass --k8s-sec-kind-image with a reachable one"
                if "pull" in text.lower() and "kubeadm init" not in text else
                f"kind kept nothing to look at: rerun `{kind} create cluster --retain --config {config_file}` "
                "and read `kind export logs`")
        raise K8sSecError(f"`kind create cluster` failed: {' / '.join(errors[-2:]) or 'exit %d' % out.returncode}; {hint}")


@contextlib.contextmanager
def kind_cluster(settings: Settings, profile: Profile) -> Iterator[ClusterHandle]:
    """Create (or, with --k8s-sec-keep-cluster, reuse) a kind cluster with Calico; delete it after."""
    ok, reason = docker_available()
    if not ok:
        raise K8sSecError(f"the kind provider needs Docker: {reason}; start Docker, or use --k8s-sec-cluster=local")
    minor = minor_of(settings.k8s_version)
    image = node_image(settings.k8s_version, settings.kind_node_image)
    kind = kind_binary(cache_dir() / "kind")
    name = KEPT_NAME if settings.keep_cluster else f"k8s-sec-{secrets.token_hex(3)}"
    workdir = cache_dir() / "kind" / name
    config_dir = workdir / "node-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    from pytest_kind import KindCluster

    with contextlib.chdir(workdir):  # pytest-kind keeps its files under the working directory
        cluster = KindCluster(name, kubeconfig=workdir / "kubeconfig", image=image, kind_path=kind)
    network_was_there = _docker_ok("network", "inspect", KIND_NETWORK)
    try:
        for file_name, text in node_files(profile).items():
            (config_dir / file_name).write_text(text)
        config_file = workdir / "kind.yaml"
        config_file.write_text(yaml.safe_dump(kind_config(minor, settings.kind_workers, config_dir, settings.registry_mirror),
                                              sort_keys=False))
        started = time.monotonic()
        create_cluster(kind, name, image, workdir / "kubeconfig", config_file)
        cluster.create(config_file)  # the cluster exists now: pytest-kind only connects to it
        created = time.monotonic()
        from .calico import install_calico

        nodes = install_calico(workdir / "kubeconfig", f"kind-{name}", calico_manifest(settings.calico_manifest),
                               settings.registry_mirror)
        seconds = {"create seconds": round(created - started, 1), "calico ready seconds": round(time.monotonic() - created, 1)}
        yield ClusterHandle(
            provider="kind",
            kubeconfig=workdir / "kubeconfig",
            context=f"kind-{name}",
            created_by_plugin=True,
            allow_cluster_changes=settings.allow_cluster_changes,
            audit_log_command=f"docker exec {name}-control-plane cat {AUDIT_LOG}",
            node_names=nodes,
            netpol_enforcer="calico",
            details={"kind": KIND_VERSION, "node image": image, "calico": settings.calico_manifest or CALICO_VERSION,
                     **seconds},
        )
    finally:
        if not settings.keep_cluster:
            try:
                cluster.delete()
            except subprocess.CalledProcessError as exc:
                log.warning("k8s-sec: `kind delete cluster --name=%s` failed (exit %d): delete it by hand", name, exc.returncode)
            if not network_was_there:  # kind leaves its docker network behind; ours goes with the cluster
                _docker_ok("network", "rm", KIND_NETWORK)
            shutil.rmtree(workdir, ignore_errors=True)
