"""Helpers the integration tests share (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib

import yaml

from pytest_k8ssec import apiserver_config
from pytest_k8ssec.apiserver_config import hardening_flags
from pytest_k8ssec.profile import default_profile_path
from pytest_k8ssec.run import labelled
from pytest_k8ssec.waits import wait_for

ADMISSION_PLUGINS = hardening_flags("", "", "")["enable-admission-plugins"].split(",")


def profile_with(change) -> str:
    data = yaml.safe_load(default_profile_path().read_text())
    change(data)
    return yaml.safe_dump(data)


def failed(result) -> set[str]:
    """The names of the cases that failed, from `-v` output."""
    return {line.split("::", 1)[1].split(" FAILED")[0] for line in result.stdout.lines
            if "::" in line and " FAILED" in line and not line.startswith("FAILED")}


@contextlib.contextmanager
def apiserver_without(local_cluster, plugin: str):
    """Restart the API server with one admission plugin switched off, then restore it."""
    kept = ",".join(p for p in ADMISSION_PLUGINS if p != plugin)
    local_cluster.start_component("kube-apiserver", [f"--enable-admission-plugins={kept}", f"--disable-admission-plugins={plugin}"])
    try:
        yield
    finally:
        local_cluster.start_component("kube-apiserver")


def nothing_left(admin) -> list[str]:
    """What runs left that is not being deleted; and what is (namespaces the cluster is emptying) must go within a minute."""
    left = labelled(admin, terminating=False)
    if not left:
        wait_for("the namespaces the runs deleted to be emptied and removed", lambda: labelled(admin), timeout=60,
                 interval=0.5, ready=lambda remaining: not remaining)
    return left


@contextlib.contextmanager
def pod_security_default(local_cluster, level: str):
    """Restart the API server with another cluster-wide Pod Security default, then restore it."""
    path = local_cluster.layout.config / f"admission-{level}.yaml"
    path.write_text(yaml.safe_dump(apiserver_config.admission_configuration(level)))
    local_cluster.start_component("kube-apiserver", [f"--admission-control-config-file={path}"])
    try:
        yield
    finally:
        local_cluster.start_component("kube-apiserver")


def certified(result) -> bool:
    return any(line.startswith("k8s-sec: CERTIFIED") for line in result.stdout.lines)
