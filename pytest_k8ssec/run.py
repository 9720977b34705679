"""What a run creates on the cluster: unique labelled names, a heartbeat, and removal by label.

Every object carries the run label, so teardown (and the next run, after a SIGKILL) finds it by
label. A run proves it is alive with a Lease it renews; another run's objects are removed only
once their Lease has gone stale, so concurrent runs never touch each other. Teardown waits until
every object is gone or being deleted: a namespace stays Terminating for seconds while the
cluster's namespace controller empties it, and that needs no one waiting.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from .kube import dynamic_client
from .waits import wait_for

log = logging.getLogger(__name__)

RUN_LABEL = "k8ssec.io/run"
MANAGED_BY = {"app.kubernetes.io/managed-by": "pytest-k8ssec"}
CREATED_ANNOTATION = "k8ssec.io/created"
LEASE_NAME = "k8ssec-run"
HEARTBEAT_SECONDS = 5
STALE_AFTER = datetime.timedelta(seconds=30)

# Cluster-scoped kinds a run may create; namespaced objects live in the run's namespaces.
CLUSTER_KINDS = [
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"),
]


NAME_PREFIX = "k8ssec-"  # every run's names, and so its namespaces, start with it


def run_prefix(run_id: str) -> str:
    """What every name a run gives starts with; its namespaces are found by it."""
    return f"{NAME_PREFIX}{run_id}-"


def control_namespace(run_id: str) -> str:
    """The namespace holding a run's heartbeat Lease."""
    return f"{run_prefix(run_id)}run"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass
class Run:
    """One run of the suite on one cluster: its id, labels and the objects it made."""

    api: client.ApiClient
    id: str = field(default_factory=lambda: secrets.token_hex(3))

    def __post_init__(self) -> None:
        self.dyn = dynamic_client(self.api)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.control_ns = control_namespace(self.id)

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.id, **MANAGED_BY}

    def name(self, base: str) -> str:
        """A unique DNS-1123 name for this run."""
        return f"{run_prefix(self.id)}{base}"[:63].rstrip("-")

    # -- creation ------------------------------------------------------------------------
    def create(self, manifest: dict[str, Any]) -> Any:
        """Create an object, adding the run's labels and creation time to its metadata.

        Namespaced objects go only into the run's own namespaces: removal deletes those
        namespaces, so anything put elsewhere would outlive the run.
        """
        meta = manifest.setdefault("metadata", {})
        namespace = meta.get("namespace")
        if namespace and not namespace.startswith(run_prefix(self.id)):
            raise ValueError(f"{manifest['kind']} {meta.get('name')} would go into {namespace}, which is not this run's: "
                             "it would outlive the run")
        meta.setdefault("labels", {}).update(self.labels)
        meta.setdefault("annotations", {})[CREATED_ANNOTATION] = _now().isoformat(timespec="seconds")
        resource = self.dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        return resource.create(body=manifest, namespace=meta.get("namespace"))

    def create_outside(self, manifest: dict[str, Any]) -> Any:
        """Create an object in a namespace that is not the run's (a probe pod in the user's namespace).

        Its controller owner is the run's control namespace, so no ReplicaSet of the user's adopts
        it, and the garbage collector removes it with that namespace even after a killed run.
        """
        core = client.CoreV1Api(self.api)
        owner = core.read_namespace(self.control_ns).metadata
        meta = manifest.setdefault("metadata", {})
        meta.setdefault("labels", {}).update(self.labels)
        meta.setdefault("annotations", {})[CREATED_ANNOTATION] = _now().isoformat(timespec="seconds")
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Namespace", "name": owner.name, "uid": owner.uid,
                                    "controller": True, "blockOwnerDeletion": False}]
        resource = self.dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        return resource.create(body=manifest, namespace=meta["namespace"])

    def namespace(self, base: str, labels: dict[str, str] | None = None) -> str:
        """A labelled namespace, returned once its `default` service account exists.

        Pods are refused until the service-account controller has made it, as the upstream e2e
        framework also waits for; on a loaded cluster that takes seconds.
        """
        name = self.name(base)
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}})
        core = client.CoreV1Api(self.api)
        wait_for(f"service account default in namespace {name} (made by kube-controller-manager)",
                 lambda: core.read_namespaced_service_account("default", name), timeout=60, interval=0.1,
                 max_interval=1, retry_on=(ApiException,))
        return name

    # -- liveness ------------------------------------------------------------------------
    def start(self) -> None:
        """Create the run's control namespace and Lease, and renew it in the background."""
        self.namespace("run")
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self.control_ns},
            "spec": {"holderIdentity": self.id, "leaseDurationSeconds": int(STALE_AFTER.total_seconds()),
                     "renewTime": _micro(_now())},
        }
        self.create(lease)
        self._thread = threading.Thread(target=self._heartbeat, name=f"k8ssec-heartbeat-{self.id}", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        coord = client.CoordinationV1Api(self.api)
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                coord.patch_namespaced_lease(LEASE_NAME, self.control_ns, {"spec": {"renewTime": _micro(_now())}})
            except Exception as exc:  # a missed beat is harmless until STALE_AFTER
                log.debug("heartbeat failed: %s", exc)

    def finish(self, timeout: float = 90) -> list[str]:
        """Stop the heartbeat and delete everything labelled with this run; return what is not being deleted."""
        self._stop.set()
        return delete_run(self.api, self.id, timeout=timeout)


def _micro(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def labelled(api: client.ApiClient, run_id: str | None = None, terminating: bool = True) -> list[str]:
    """Every object on the cluster carrying the run label (of one run, or of any); with
    `terminating=False`, only those not being deleted already."""
    return [f"{kind}/{item.metadata.name}" for kind, item in _labelled_items(api, run_id)
            if terminating or not item.metadata.deletionTimestamp]


def _labelled_items(api: client.ApiClient, run_id: str | None) -> Iterator[tuple[str, Any]]:
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    dyn = dynamic_client(api)
    for api_version, kind in [("v1", "Namespace"), *CLUSTER_KINDS]:
        try:
            items = dyn.resources.get(api_version=api_version, kind=kind).get(label_selector=selector).items
        except (ApiException, dynamic.exceptions.ResourceNotFoundError):
            continue
        yield from ((kind, item) for item in items)
    yield from (("Pod", pod) for pod in _pods_outside(api, selector))


def _pods_outside(api: client.ApiClient, selector: str) -> list[Any]:
    """The run's probe pods in namespaces that are not a run's (`Run.create_outside`)."""
    try:
        pods = dynamic_client(api).resources.get(api_version="v1", kind="Pod").get(label_selector=selector).items
    except ApiException:  # an identity that may not list pods everywhere made none outside its namespaces
        return []
    return [p for p in pods if not p.metadata.namespace.startswith(NAME_PREFIX)]


def delete_run(api: client.ApiClient, run_id: str, timeout: float = 90) -> list[str]:
    """Delete every object of one run, wait until each is gone or being deleted; return the others."""
    selector = f"{RUN_LABEL}={run_id}"
    dyn = dynamic_client(api)
    core = client.CoreV1Api(api)
    for ns in core.list_namespace(label_selector=selector).items:
        # the run's pods go at once (no grace): the namespace controller then has nothing to wait for
        ignore_missing(lambda: core.delete_collection_namespaced_pod(ns.metadata.name, grace_period_seconds=0))
    for pod in _pods_outside(api, selector):
        ignore_missing(lambda: core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0))
    for api_version, kind in [*CLUSTER_KINDS, ("v1", "Namespace")]:
        try:
            resource = dyn.resources.get(api_version=api_version, kind=kind)
            for item in resource.get(label_selector=selector).items:
                if not item.metadata.deletionTimestamp:
                    ignore_missing(lambda: resource.delete(name=item.metadata.name, body={"propagationPolicy": "Background"}))
        except (ApiException, dynamic.exceptions.ResourceNotFoundError) as exc:
            log.debug("cannot list %s: %s", kind, exc)
    try:
        wait_for(f"the objects of run {run_id} to be deleted", lambda: labelled(api, run_id, terminating=False),
                 timeout=timeout, interval=0.1, max_interval=0.5, ready=lambda left: not left)
    except AssertionError:
        pass
    return labelled(api, run_id, terminating=False)


def ignore_missing(call) -> None:
    """Delete something that may already be gone."""
    try:
        call()
    except ApiException as exc:
        if exc.status != 404:
            raise


def stale_runs(api: client.ApiClient, own_id: str = "") -> list[str]:
    """Runs whose objects remain but whose Lease is gone or has not been renewed for a while."""
    return [run_id for run_id in _run_ids(api, own_id) if not _alive(api, run_id)]


def live_runs(api: client.ApiClient, own_id: str = "") -> list[str]:
    """Other runs on this cluster whose heartbeat is fresh: never touched."""
    return [run_id for run_id in _run_ids(api, own_id) if _alive(api, run_id)]


def _run_ids(api: client.ApiClient, own_id: str) -> list[str]:
    """Runs with objects that are not being deleted: a run that finished has none."""
    ids = {item.metadata.labels[RUN_LABEL] for _, item in _labelled_items(api, None) if not item.metadata.deletionTimestamp}
    ids.discard(own_id)
    return sorted(ids)


def _alive(api: client.ApiClient, run_id: str) -> bool:
    """A run is alive while its Lease was renewed within STALE_AFTER (an unreadable Lease counts as alive)."""
    control_ns = control_namespace(run_id)
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, control_ns)
    except ApiException as exc:
        if exc.status != 404:
            return True
        return _young_namespace(api, control_ns)  # a run that is starting has its namespace, not yet its Lease
    renewed = lease.spec.renew_time
    return bool(renewed) and _now() - renewed < STALE_AFTER


def _young_namespace(api: client.ApiClient, name: str) -> bool:
    try:
        ns = client.CoreV1Api(api).read_namespace(name)
    except ApiException:
        return False
    return ns.metadata.deletion_timestamp is None and _now() - ns.metadata.creation_timestamp < STALE_AFTER
