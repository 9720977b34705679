"""The run's settings, read once from pytest options and ini values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import K8sSecError

PROVIDERS = ("auto", "local", "kind", "existing")
SUITES = ("builtin", "none")
DEFAULT_K8S_VERSION = "v1.37.2"


def cache_dir() -> Path:
    """Where built binaries, images and kept clusters live (K8SSEC_CACHE overrides)."""
    base = os.environ.get("K8SSEC_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "pytest-k8ssec")
    return Path(base)


@dataclass(frozen=True)
class Settings:
    """Everything the options say about which cluster to use and how."""

    provider: str = "auto"
    kubeconfig: Path | None = None
    context: str | None = None
    profile: Path | None = None
    report_dir: Path | None = None
    keep_cluster: bool = False
    allow_cluster_changes: bool = False
    k8s_version: str = DEFAULT_K8S_VERSION
    behaviours: str | None = None
    kind_node_image: str | None = None
    kind_workers: int = 1
    calico_manifest: str | None = None
    cleanup_only: bool = False
    accept_partial: bool = False
    registry_mirror: str | None = None
    waivers: Path | None = None
    strict_waivers: bool = False
    baseline: Path | None = None
    claims: Path | None = None
    suite: str | None = None  # builtin, none, or None: builtin only when no test paths are given
    allow_probe_pods: bool = False

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise K8sSecError(f"--k8s-sec-cluster must be one of {', '.join(PROVIDERS)}, not {self.provider!r}")
        if self.provider in ("local", "kind") and (self.kubeconfig or self.context):
            raise K8sSecError(
                f"--k8s-sec-cluster={self.provider} creates its own cluster: drop --kubeconfig/--context, "
                "or use --k8s-sec-cluster=existing"
            )
        if self.kind_workers < 0:
            raise K8sSecError("--k8s-sec-kind-workers must be 0 or more")
