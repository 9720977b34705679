"""Building the local cluster's binaries from the Go module proxy into a cache directory.

Each component is built from its own small Go module so versions never mix: Kubernetes from a
go.mod generated from the release's own go.mod (every staging module replaced by its published
v0.Y.Z), etcd, kube-router and CoreDNS from the modules under gomod/. A binary is rebuilt only when missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import progress
from ..errors import K8sSecError


GOMOD_DIR = Path(__file__).parent / "gomod"
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
_STAGING = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", re.M)
_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Binaries:
    """Paths of every binary the local cluster runs."""

    directory: Path
    version: str

    def __getitem__(self, name: str) -> Path:
        return self.directory / name


def go_env() -> dict[str, str]:
    """Environment for go commands: no toolchain downloads, static binaries, module mode."""
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    return env


def require_go() -> str:
    go = shutil.which("go")
    if not go:
        raise K8sSecError("the local cluster builds Kubernetes from source and needs Go: install Go 1.26 or newer and put `go` on PATH")
    return go


def staging_replaces(upstream_gomod: str, version: str) -> list[str]:
    """The release's `=> ./staging/` modules, each replaced by its published v0.Y.Z."""
    m = _VERSION.match(version)
    if not m:
        raise K8sSecError(f"Kubernetes version must look like v1.Y.Z, not {version!r}")
    published = f"v0.{m[1]}.{m[2]}"
    modules = _STAGING.findall(upstream_gomod)
    if not modules:
        raise K8sSecError(f"the go.mod of k8s.io/kubernetes {version} lists no staging modules; cannot build it")
    return [f"\t{mod} => {mod} {published}" for mod in modules]


def kubernetes_gomod(upstream_gomod: str, version: str) -> str:
    """Our go.mod for one Kubernetes release: its go and godebug lines, its staging replaced."""
    go_line = re.search(r"^go \S+$", upstream_gomod, re.M)
    godebug = re.findall(r"^godebug .*$", upstream_gomod, re.M)
    lines = [
        "// Generated from the go.mod of k8s.io/kubernetes " + version + ": builds its cmd/ packages.",
        "module k8ssec.local/kubernetes",
        "",
        go_line.group(0) if go_line else "go 1.22",
        *godebug,
        "",
        f"require k8s.io/kubernetes {version}",
        "",
        "replace (",
        *staging_replaces(upstream_gomod, version),
        ")",
        "",
    ]
    return "\n".join(lines)


def version_ldflags(version: str) -> str:
    """Stamp the version so the servers report their real one."""
    m = _VERSION.match(version)
    assert m, version
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={m[1]}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def check_version(version: str) -> None:
    """A release this project can run: v1.Y.Z with Y >= 30 (the API server features the suite needs)."""
    m = _VERSION.match(version)
    if not m:
        raise K8sSecError(f"Kubernetes version must look like v1.Y.Z (e.g. v1.36.3), not {version!r}")
    if int(m[1]) < 30:
        raise K8sSecError(f"Kubernetes {version} is older than v1.30, the oldest release the local cluster supports")


def check_upgrade(current: str, target: str) -> None:
    """Forward, and one minor version at a time, as Kubernetes' version skew policy allows the API server."""
    check_version(target)
    (cur_minor, cur_patch), (minor, patch) = (tuple(map(int, _VERSION.match(v).groups())) for v in (current, target))
    if (minor, patch) <= (cur_minor, cur_patch):
        raise K8sSecError(f"{target} is not newer than the running {current}: the local cluster upgrades forward only")
    if minor > cur_minor + 1:
        raise K8sSecError(f"{current} -> {target} skips a minor version; Kubernetes upgrades one at a time: "
                          f"upgrade to v1.{cur_minor + 1}.Z first")


class Builder:
    """Builds into `cache/bin/<component>-<version>/`, timing each build."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.timings: dict[str, float] = {}

    def all(self, k8s_version: str) -> Binaries:
        """Every binary of the local cluster, built where missing, gathered in one directory."""
        check_version(k8s_version)
        out = self.cache / "bin" / f"cluster-{k8s_version}"
        out.mkdir(parents=True, exist_ok=True)
        sources = {
            **{cmd: self.kubernetes(k8s_version) / cmd for cmd in KUBERNETES_COMMANDS},
            "etcd": self.module_binary("etcd", "go.etcd.io/etcd/server/v3"),
            "kube-router": self.module_binary("kube-router", "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"),
            "coredns": self.module_binary("coredns", "github.com/coredns/coredns"),
        }
        for name, path in sources.items():
            link = out / name
            if not link.exists():
                link.symlink_to(path)
        return Binaries(out, k8s_version)

    def kubernetes(self, version: str) -> Path:
        out = self.cache / "bin" / f"kubernetes-{version}"
        if all((out / cmd).exists() for cmd in KUBERNETES_COMMANDS):
            return out
        go = require_go()
        src = self.cache / "src" / f"kubernetes-{version}"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(kubernetes_gomod(self._upstream_gomod(go, version), version))
        self._go_build(go, src, out, [f"k8s.io/kubernetes/cmd/{cmd}" for cmd in KUBERNETES_COMMANDS], version_ldflags(version), f"kubernetes-{version}")
        return out

    def module_binary(self, component: str, package: str) -> Path:
        """Build the main package of one of our own gomod/ modules."""
        out = self.cache / "bin" / component
        binary = out / component
        if binary.exists():
            return binary
        go = require_go()
        src = self.cache / "src" / component
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(GOMOD_DIR / component, src)
        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self._run(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp / component), package], src, component)
        out.mkdir(parents=True, exist_ok=True)
        (tmp / component).rename(binary)
        tmp.rmdir()
        return binary

    def _upstream_gomod(self, go: str, version: str) -> str:
        proc = subprocess.run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{version}"], env=go_env(),
                              cwd=self.cache, capture_output=True, text=True)
        info = json.loads(proc.stdout or "{}") if proc.stdout.strip().startswith("{") else {}
        if proc.returncode != 0 or not info.get("GoMod"):
            reason = " ".join((info.get("Error") or proc.stderr or "no answer").split())
            raise K8sSecError(
                f"Kubernetes {version} is not available from the Go module proxy ({reason}); "
                "pick an existing release, e.g. `go list -m -versions k8s.io/kubernetes`"
            )
        return Path(info["GoMod"]).read_text()

    def _go_build(self, go: str, src: Path, out: Path, packages: list[str], ldflags: str, label: str) -> None:
        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self._run(go, ["build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp) + "/", *packages], src, label)
        out.mkdir(parents=True, exist_ok=True)
        for binary in tmp.iterdir():
            binary.rename(out / binary.name)
        tmp.rmdir()

    def _run(self, go: str, args: list[str], cwd: Path, label: str) -> None:
        progress.say(f"building {label} (minutes the first time)")
        start = time.monotonic()
        proc = progress.run([go, *args], f"building {label}", cwd=cwd, env=go_env())
        self.timings[label] = time.monotonic() - start
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise K8sSecError(f"building {label} failed (go {' '.join(args[:1])} in {cwd}):\n{tail}")
        progress.say(f"built {label} in {self.timings[label]:.0f}s")
