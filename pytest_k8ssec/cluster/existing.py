"""The `existing` provider: any cluster a kubeconfig points at. Only namespaced changes unless opted in."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import K8sSecError
from ..settings import Settings
from ..handle import ClusterHandle


def kubeconfig_path(settings: Settings) -> Path:
    """The kubeconfig the user means: --kubeconfig, else $KUBECONFIG's first file, else ~/.kube/config."""
    if settings.kubeconfig:
        path = Path(settings.kubeconfig).expanduser()
    elif os.environ.get("KUBECONFIG"):
        path = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0]).expanduser()
    else:
        path = Path.home() / ".kube" / "config"
    if not path.is_file():
        raise K8sSecError(f"kubeconfig {path} does not exist: pass --kubeconfig FILE, or use --k8s-sec-cluster=local")
    if not os.access(path, os.R_OK):
        raise K8sSecError(f"kubeconfig {path} is not readable: fix its permissions or pass another --kubeconfig")
    return path


def open_existing(settings: Settings, audit_log: str | None, audit_log_command: str | None) -> ClusterHandle:
    return ClusterHandle(
        provider="existing",
        kubeconfig=kubeconfig_path(settings),
        context=settings.context,
        created_by_plugin=False,
        allow_cluster_changes=settings.allow_cluster_changes,
        audit_log=Path(audit_log) if audit_log else None,
        audit_log_command=audit_log_command,
    )
