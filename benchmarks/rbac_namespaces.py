"""RBAC-2's every-namespace case and RBAC-6 on a cluster with many namespaces: milliseconds per namespace.

    python benchmarks/rbac_namespaces.py                 # 1000 namespaces, each with a RoleBinding of `edit` to a team group
    python benchmarks/rbac_namespaces.py --count 200 --bind default-account   # ... to the namespace's default account

Runs `--k8s-sec-behaviours=RBAC-2,RBAC-6` on the local cluster (which must be up) before and after
creating the namespaces, reads each case's time from the JUnit XML, and prints the difference per
namespace added. Then removes the namespaces (label k8ssec.io/benchmark) and waits until they are
gone. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
import subprocess
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8ssec import rbac
from pytest_k8ssec.kube import api_client
from pytest_k8ssec.local.cluster import LocalCluster, default_run_dir
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION, cache_dir
from pytest_k8ssec.waits import wait_for

LABEL = "k8ssec.io/benchmark"
CASES = {"RBAC-2 every namespace": "test_user_rights_end_at_the_tenant_namespace",
         "RBAC-6": "test_no_subject_class_holds_an_escalation_right"}


def case_seconds(workdir: Path) -> dict[str, float]:
    """One suite run of RBAC-2 and RBAC-6; each case's time from the JUnit XML."""
    junit = workdir / f"junit-{time.monotonic_ns()}.xml"
    argv = [sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=local", "-p", "no:cacheprovider", "-q",
            "--k8s-sec-behaviours=RBAC-2,RBAC-6", f"--junitxml={junit}"]
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        raise SystemExit("the run of RBAC-2 and RBAC-6 did not pass: no figure (see its output above)")
    times = {c.get("name"): float(c.get("time")) for c in ET.parse(junit).iter("testcase")}
    return {label: times[name] for label, name in CASES.items()}


def create(api: client.ApiClient, index: int, bind: str) -> None:
    name = f"bench-rbac-{index:04d}"
    core, rbac_api = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {LABEL: "rbac-namespaces"}}})
    subject = rbac.group(f"team-{index:04d}") if bind == "group" else rbac.service_account("default", name)
    role = "edit" if bind == "group" else "view"
    rbac_api.create_namespaced_role_binding(name, rbac.binding("team", "ClusterRole", role, [subject], name))


def remove(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    names = [ns.metadata.name for ns in core.list_namespace(label_selector=LABEL).items]

    def delete(name: str) -> None:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(delete, names))
    deadline = time.monotonic() + 900
    while core.list_namespace(label_selector=LABEL).items and time.monotonic() < deadline:
        time.sleep(5)
    left = len(core.list_namespace(label_selector=LABEL).items)
    print(f"removed {len(names)} namespaces" + (f"; {left} still terminating" if left else ""))


def report(before: dict[str, float], after: dict[str, float], total: int, count: int) -> None:
    print(f"namespaces: {total} before, {total + count} after")
    for label in CASES:
        per = (after[label] - before[label]) / count * 1000
        print(f"{label}: {before[label]:.2f} s before, {after[label]:.2f} s after: {per:.2f} ms per namespace added "
              f"({after[label] / (total + count) * 1000:.2f} ms per namespace overall)")
    both = sum(after.values()) - sum(before.values())
    print(f"RBAC-2 every namespace + RBAC-6: {both / count * 1000:.2f} ms per namespace added (goal < 25)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--bind", choices=("group", "default-account"), default="group",
                        help="each RoleBinding's subject: a team group (edit), or the namespace's default account (view)")
    args = parser.parse_args()
    cluster = LocalCluster(default_run_dir(), cache_dir(), DEFAULT_K8S_VERSION)
    if not cluster.is_up():
        print("the local cluster is not up: python -m pytest_k8ssec.local up", file=sys.stderr)
        return 1
    api = api_client(str(cluster.layout.admin_kubeconfig))
    total = len(client.CoreV1Api(api).list_namespace().items)
    with tempfile.TemporaryDirectory() as tmp:
        before = case_seconds(Path(tmp))
        t0 = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda i: create(api, i, args.bind), range(args.count)))
            print(f"created {args.count} namespaces, each with a RoleBinding ({args.bind}), in {time.monotonic() - t0:.0f} s")
            # the service-account controller makes each namespace's default account: let it catch up, or the run's own
            # namespaces wait behind a thousand others
            core = client.CoreV1Api(api)
            wait_for(f"the default service account of {args.count} namespaces",
                     lambda: sum(sa.metadata.namespace.startswith("bench-rbac-") for sa in
                                 core.list_service_account_for_all_namespaces(field_selector="metadata.name=default").items),
                     timeout=600, interval=2, ready=lambda n: n >= args.count)
            after = case_seconds(Path(tmp))
            report(before, after, total, args.count)
        finally:
            remove(api)
    return 0


if __name__ == "__main__":
    sys.exit(main())
