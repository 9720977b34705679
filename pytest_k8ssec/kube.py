"""Connecting to the cluster with the official client, and the preflight checks of a run (its rights: rights.py)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import urllib3
import yaml

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from .errors import ClusterUnavailable, K8sSecError
from .handle import ClusterHandle

MIN_MINOR = 30  # ValidatingAdmissionPolicy is GA from 1.30; PSP clusters are out of support


def _check_kubeconfig(kubeconfig: str, context: str | None) -> None:
    """Say plainly when a file is no kubeconfig or lacks the context asked for."""
    try:
        data = yaml.safe_load(Path(kubeconfig).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise K8sSecError(f"cannot read kubeconfig {kubeconfig}: {getattr(exc, 'strerror', None) or 'not valid YAML'}; "
                          "pass a valid --kubeconfig") from None
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list) or not isinstance(data.get("contexts"), list):
        raise K8sSecError(f"{kubeconfig} is not a kubeconfig (no clusters and contexts lists): pass a valid --kubeconfig")
    names = [c.get("name") for c in data["contexts"] if isinstance(c, dict)]
    if context and context not in names:
        raise K8sSecError(f"context {context!r} is not in {kubeconfig} (it has: {', '.join(map(str, names)) or 'none'}): "
                          "pass one of those to --context")


def api_client(kubeconfig: str, context: str | None = None, retry: bool = True) -> client.ApiClient:
    """An ApiClient for a kubeconfig; a malformed one is a one-line error.

    `retry=False` for callers that poll a server which is still starting: their wait retries.
    """
    _check_kubeconfig(kubeconfig, context)
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=cfg)
    except ConfigException as exc:
        raise K8sSecError(f"cannot use kubeconfig {kubeconfig}: {exc}; pass a valid --kubeconfig or --context") from None
    except Exception as exc:  # a YAML or key-format error inside the kubeconfig
        raise K8sSecError(f"cannot read kubeconfig {kubeconfig}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    cfg.retries = urllib3.util.Retry(total=2, connect=2, read=0, backoff_factor=0.2) if retry else False
    return client.ApiClient(cfg)


def connect(handle: ClusterHandle) -> client.ApiClient:
    """The admin client of the cluster under test."""
    return api_client(str(handle.kubeconfig), handle.context)


@functools.cache
def dynamic_client(api: client.ApiClient) -> dynamic.DynamicClient:
    """One dynamic client per ApiClient: its discovery is read once and shared by everything that resolves kinds."""
    return dynamic.DynamicClient(api)


@dataclass(frozen=True)
class ServerInfo:
    git_version: str
    minor: int


def server_info(api: client.ApiClient, kubeconfig: object) -> ServerInfo:
    """Reach the server and read its version; unreachable or refused is one clear line."""
    try:
        info = client.VersionApi(api).get_code(_request_timeout=10)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise ClusterUnavailable(
                f"the API server at {api.configuration.host} rejected the credentials in {kubeconfig} "
                f"(HTTP {exc.status}: expired or wrong?): renew them or pass another --kubeconfig/--context") from None
        raise ClusterUnavailable(f"the API server at {api.configuration.host} answered HTTP {exc.status}: {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc)).split(": ")[-1]
        raise ClusterUnavailable(
            f"cannot reach the API server at {api.configuration.host} ({reason}): is the cluster running? "
            "check --kubeconfig/--context") from None
    return supported_version(info.git_version, info.major, info.minor)


def supported_version(git_version: str, major: str, minor: str) -> ServerInfo:
    """The server's version if the suite supports it; else one line saying what is needed."""
    m = re.match(r"\d+", minor or "")
    number = int(m.group(0)) if m and major == "1" else 0
    if number < MIN_MINOR:
        raise K8sSecError(f"the cluster runs Kubernetes {git_version}; pytest-k8ssec needs 1.{MIN_MINOR} or newer "
                          "(ValidatingAdmissionPolicy GA, PodSecurityPolicy gone): upgrade it or point at another cluster")
    return ServerInfo(git_version, number)
