"""The ClusterHandle every test gets: how to reach the cluster and what it can show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# busybox on a public image serves the probe targets' two ports from a directory it makes itself.
PUBLIC_HTTPD_COMMAND = (
    "sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && trap 'kill $a $b; exit 0' TERM; "
    "httpd -f -p 8080 -h /tmp/www & a=$!; httpd -f -p 8081 -h /tmp/www & b=$!; wait",
)


@dataclass(frozen=True)
class Images:
    """Images the suite's pods run, and how they are pulled.

    On the local cluster these are images the project built and imported (pull policy Never);
    elsewhere they are public images a registry serves.
    """

    busybox: str = "docker.io/library/busybox:1.36"
    busybox_nonroot: str = "docker.io/library/busybox:1.36"  # run with runAsUser where needed
    httpd: str = "docker.io/library/busybox:1.36"
    root_user: str = "docker.io/library/busybox:1.36"
    pull_policy: str = "IfNotPresent"
    httpd_command: tuple[str, ...] = PUBLIC_HTTPD_COMMAND  # empty: the httpd image serves by itself


@dataclass(frozen=True)
class ClusterHandle:
    """A cluster under test. Providers build it; what the run learns later makes a new one (replace)."""

    provider: str
    kubeconfig: Path
    context: str | None = None
    created_by_plugin: bool = False
    allow_cluster_changes: bool = False
    audit_log: Path | None = None
    audit_log_command: str | None = None
    node_names: list[str] = field(default_factory=list)
    images: Images = field(default_factory=Images)
    netpol_enforcer: str | None = None
    server_version: tuple[int, int] = (0, 0)
    git_version: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def may_change_cluster(self) -> bool:
        """Cluster-scoped changes are allowed only on our own clusters or with explicit opt-in."""
        return self.created_by_plugin or self.allow_cluster_changes
