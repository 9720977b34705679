"""Both ends of the in-cluster Job: `run` inside its pod, `fetch` outside it.

The pod keeps no volume to copy from after it ends, so the runner writes its report directory
into its own log, framed and base64-encoded, after pytest's output; `fetch` reads the log back
through the API server, which any kubeconfig that applied the manifest can do.
"""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..cleanup import remove_leftovers
from ..errors import K8sSecError
from ..kube import dynamic_client
from ..run import STALE_AFTER, ignore_missing, live_runs
from ..waits import WaitTimeout, wait_for
from .manifest import JOB_NAME, LABEL, Names

BEGIN, END = "----- k8s-sec reports (tar.gz, base64) exit {code} -----", "----- end of k8s-sec reports -----"
REPORTS = re.compile(re.escape(BEGIN).replace(r"\{code\}", r"(?P<code>-?\d+)") + r"\n(?P<data>.*?)" + re.escape(END), re.S)
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def run(pytest_args: list[str]) -> int:
    """Inside the pod: the suite against this cluster with the pod's service account, then the reports into the log."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        print("error: not in a pod (no KUBERNETES_SERVICE_HOST): apply the manifest and let the Job run this", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="k8s-sec-") as tmp:
        kubeconfig, reports = Path(tmp) / "kubeconfig", Path(tmp) / "reports"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}")))
        suite = subprocess.Popen([sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=existing",
                                  f"--kubeconfig={kubeconfig}", f"--k8s-sec-report={reports}", "-p", "no:cacheprovider",
                                  "--rootdir", tmp, *pytest_args], cwd=tmp)
        # The kubelet stops a pod with SIGTERM to this process only: the suite gets it too, and removes what it made.
        signal.signal(signal.SIGTERM, lambda signum, frame: suite.send_signal(signal.SIGTERM))
        code = suite.wait()
        print(BEGIN.format(code=code))
        print(base64.encodebytes(_tar(reports)).decode(), end="")
        print(END, flush=True)
    return code


def _kubeconfig(server: str) -> dict:
    """The pod's service account as a kubeconfig: its projected token (valid 3607 s, past the Job's deadline)."""
    return {"apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
            "clusters": [{"name": "in-cluster", "cluster": {"server": server,
                                                            "certificate-authority": str(SERVICE_ACCOUNT / "ca.crt")}}],
            "users": [{"name": "runner", "user": {"tokenFile": str(SERVICE_ACCOUNT / "token")}}],
            "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "runner"}}]}


def _tar(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                tar.add(str(path), path.name)
    return buf.getvalue()


def apply(api: client.ApiClient, docs: list[dict]) -> None:
    """Create the manifest's objects (what `kubectl apply -f` of the printed manifest does on a new cluster)."""
    resources = dynamic_client(api).resources
    try:
        for doc in docs:
            resources.get(api_version=doc["apiVersion"], kind=doc["kind"]).create(
                body=doc, namespace=doc["metadata"].get("namespace"))
    except ApiException as exc:
        raise K8sSecError(f"cannot create {doc['kind']} {doc['metadata']['name']}: {exc.reason}; "
                          "is an in-cluster run of that --name still there? fetch it first") from None


def fetch(api: client.ApiClient, names: Names, out: Path, timeout: float) -> int:
    """Wait for the Job to end, write its reports and log into `out`, remove every object of the manifest.

    Returns the suite's exit status inside the pod. A Job that ended without reports (killed,
    or its pod never ran) is an error naming what was seen, once the objects its suite left
    are removed too.
    """
    try:
        finished, text = _finished(api, names, timeout)
    finally:
        remove(api, names)
    out.mkdir(parents=True, exist_ok=True)
    match = REPORTS.search(text or "")
    (out / "pytest.log").write_text(text[:match.start()] if match else text or "")
    if not match:
        removed = _collect_killed_run(api)
        seen = f"its log is in {out / 'pytest.log'}" if text else f"its pod is gone, the Job says {_conditions(finished)}"
        raise K8sSecError(f"the Job {names.namespace}/{JOB_NAME} ended without reports (killed, or the suite did not "
                          f"start): {seen}" + (f"; {'; '.join(removed)}" if removed else ""))
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(match["data"])), mode="r:gz") as tar:
        tar.extractall(out, filter="data")
    return int(match["code"])


def _finished(api: client.ApiClient, names: Names, timeout: float) -> tuple[client.V1Job, str | None]:
    """The Job once it has ended, and its pod's log (None when no pod is left to read)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    try:
        job = wait_for(f"the Job {names.namespace}/{JOB_NAME} to finish", lambda: batch.read_namespaced_job(JOB_NAME, names.namespace),
                       timeout=timeout, interval=2, max_interval=5, ready=lambda j: bool(j.status.succeeded or j.status.failed))
    except ApiException as exc:
        raise K8sSecError(f"no Job {names.namespace}/{JOB_NAME} to fetch ({exc.reason}): apply the manifest first") from None
    except WaitTimeout:
        raise K8sSecError(f"the Job {names.namespace}/{JOB_NAME} did not finish within {timeout:.0f}s: "
                          "fetch again later, or pass a longer --timeout") from None
    pods = core.list_namespaced_pod(names.namespace, label_selector=f"job-name={JOB_NAME}").items
    if not pods:
        return job, None
    newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
    return job, core.read_namespaced_pod_log(newest.metadata.name, names.namespace)


def _collect_killed_run(api: client.ApiClient) -> list[str]:
    """A suite killed in the pod left its objects: once its heartbeat is stale they are a killed run's, removed here."""
    try:
        wait_for("the killed run's heartbeat to go stale", lambda: live_runs(api), timeout=STALE_AFTER.total_seconds() + 30,
                 interval=2, max_interval=5, ready=lambda alive: not alive)
    except WaitTimeout:
        pass  # another run is alive: what it did not leave is removed below, and the next run removes the rest
    return remove_leftovers(api)


def _conditions(job: client.V1Job) -> str:
    return "; ".join(f"{c.type}: {c.reason or ''} {c.message or ''}".strip() for c in job.status.conditions or []) or "no condition"


def remove(api: client.ApiClient, names: Names) -> None:
    """Delete the manifest's objects: the namespace (with the Job, its pod and account) and the cluster-wide RBAC."""
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    selector = f"{LABEL}={names.name}"
    for binding in rbac.list_cluster_role_binding(label_selector=selector).items:
        ignore_missing(lambda: rbac.delete_cluster_role_binding(binding.metadata.name))
    for role in rbac.list_cluster_role(label_selector=selector).items:
        ignore_missing(lambda: rbac.delete_cluster_role(role.metadata.name))
    for namespace in core.list_namespace(label_selector=selector).items:
        ignore_missing(lambda: core.delete_namespace(namespace.metadata.name))
