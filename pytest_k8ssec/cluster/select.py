"""Choosing and opening the cluster a run uses: one context manager for every provider."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Iterator

from ..errors import K8sSecError
from ..profile import Profile
from ..settings import Settings, cache_dir
from .existing import open_existing
from ..handle import ClusterHandle

if TYPE_CHECKING:
    from ..local.cluster import LocalCluster

log = logging.getLogger(__name__)


def choose_provider(settings: Settings) -> tuple[str, str]:
    """The provider `auto` means here, and why."""
    if settings.provider != "auto":
        return settings.provider, "asked for with --k8s-sec-cluster"
    if settings.kubeconfig or settings.context:
        return "existing", "a kubeconfig or context was given"
    from .kind import docker_available

    ok, reason = docker_available()
    if ok:
        return "kind", reason
    return "local", f"no kubeconfig given and {reason}"


@contextlib.contextmanager
def open_cluster(settings: Settings, profile: Profile) -> Iterator[ClusterHandle]:
    """Yield a ClusterHandle whose images follow the profile; clusters this run created are removed on exit unless kept."""
    provider, why = choose_provider(settings)
    log.info("k8s-sec: using the %s cluster provider (%s)", provider, why)
    with _open_provider(provider, why, settings, profile) as handle:
        yield dataclasses.replace(handle, details={**handle.details, "chosen because": why},
                                  images=dataclasses.replace(handle.images, **profile.images))


@contextlib.contextmanager
def _open_provider(provider: str, why: str, settings: Settings, profile: Profile) -> Iterator[ClusterHandle]:
    if provider == "existing":
        yield open_existing(settings, profile.audit_log_path, profile.audit_log_command)
        return
    if provider == "kind":
        from .kind import kind_cluster

        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(kind_cluster(settings, profile))
            except K8sSecError as exc:
                if settings.provider != "auto":
                    raise
                raise K8sSecError(f"{exc} (auto chose kind because {why}; --k8s-sec-cluster=local avoids Docker)") from None
            yield handle
        return
    cluster = _local_cluster(settings)
    already_up = cluster.is_up()
    handle = cluster.up(profile)
    try:
        yield handle
    finally:
        if not already_up and not settings.keep_cluster:
            cluster.down()


def find_cluster(settings: Settings) -> ClusterHandle | None:
    """The running cluster --k8s-sec-cleanup acts on; never creates one (None: nothing runs)."""
    provider, _ = choose_provider(settings)
    if provider == "existing":
        return open_existing(settings, None, None)
    if provider == "kind":
        raise K8sSecError("--k8s-sec-cleanup does not look for kind clusters: point it at one with "
                          "--k8s-sec-cluster=existing --kubeconfig FILE")
    cluster = _local_cluster(settings)
    return cluster.handle() if cluster.is_up() else None


def _local_cluster(settings: Settings) -> LocalCluster:
    """The machine's one local cluster, for the version asked for; loaded only when a run needs it."""
    from ..local.cluster import LocalCluster, default_run_dir

    return LocalCluster(default_run_dir(), cache_dir(), settings.k8s_version)
