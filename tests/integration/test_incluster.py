"""The suite as a Job inside the real local cluster: its image built here, its verdicts those of a run from outside.

The image is built once (its root filesystem cached between sessions) and imported into the
local cluster's containerd, as the kit pushes it to its registry for kind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from pytest_k8ssec.incluster import image, job
from pytest_k8ssec.incluster.manifest import NAMESPACED_RULES, Names, objects
from pytest_k8ssec.local.images import import_images
from pytest_k8ssec.run import labelled
from pytest_k8ssec.waits import wait_for

from test_isolation import profile_with_local_images

# One of every kind of mechanism: can-i, NetworkPolicy, Pod Security, the suite's admission gate, the kubelet.
BEHAVIOURS = "--k8s-sec-behaviours=RBAC-1,RBAC-2,NETPOL-2,PSP-1,PSP-3,NODE-1"


@pytest.fixture(scope="module")
def runner_image(local_cluster, tmp_path_factory) -> str:
    path = image.build(Path(__file__).resolve().parents[2], tmp_path_factory.mktemp("image"))
    import_images([path], str(local_cluster.layout.containerd_socket))
    return image.REFERENCE


def verdicts(directory) -> dict[str, str]:
    data = json.loads((directory / "k8s-sec-report.json").read_text())
    return {b: v["status"] for b, v in data["certification"]["behaviours"].items()}


def nothing_left(admin: client.ApiClient, names: Names) -> None:
    selector = f"k8ssec.io/incluster={names.name}"
    assert not [n for n in client.CoreV1Api(admin).list_namespace(label_selector=selector).items
                if not n.metadata.deletion_timestamp], "the runner's namespace is neither gone nor being deleted"
    assert not client.RbacAuthorizationV1Api(admin).list_cluster_role_binding(label_selector=selector).items
    assert not client.RbacAuthorizationV1Api(admin).list_cluster_role(label_selector=selector).items
    assert labelled(admin, terminating=False) == [], "the suite in the Job left objects"


def test_in_cluster_verdicts_equal_the_outside_runs_and_fetch_leaves_nothing(local_cluster, admin, runner_image, pytester,
                                                                             tmp_path, monkeypatch):
    profile = profile_with_local_images(local_cluster, tmp_path)
    names = Names("it-same")
    job.apply(admin, objects(names, image=runner_image, pull_policy="Never", profile=(tmp_path / "profile.yaml").read_text(),
                         allow_cluster_changes=True, pytest_args=[BEHAVIOURS]))
    inside = tmp_path / "inside"
    code = job.fetch(admin, names, inside, timeout=600)
    monkeypatch.setenv("K8SSEC_CACHE", str(local_cluster.cache))
    outside = pytester.runpytest_subprocess("--k8s-sec", "--k8s-sec-cluster=existing", "-p", "no:cacheprovider",
                                            f"--kubeconfig={local_cluster.layout.admin_kubeconfig}",
                                            "--k8s-sec-allow-cluster-changes", profile, BEHAVIOURS,
                                            f"--k8s-sec-report={tmp_path / 'outside'}")
    print(f"inside: {verdicts(inside)}\noutside: {verdicts(tmp_path / 'outside')}")
    assert code == 0 and outside.ret == 0, (inside / "pytest.log").read_text()[-3000:]
    assert verdicts(inside) == verdicts(tmp_path / "outside") and set(verdicts(inside).values()) == {"pass"}
    nothing_left(admin, names)


def test_a_job_whose_account_lacks_a_right_is_not_certified_naming_it(local_cluster, admin, runner_image, tmp_path):
    names = Names("it-lacking")
    profile_with_local_images(local_cluster, tmp_path)
    docs = objects(names, image=runner_image, pull_policy="Never", profile=(tmp_path / "profile.yaml").read_text(),
                   pytest_args=["--k8s-sec-behaviours=NETPOL-2"])
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    role["rules"] = [dict(r, resources=[x for x in r["resources"] if x != "pods/exec"]) for r in NAMESPACED_RULES]
    job.apply(admin, docs)
    out = tmp_path / "out"
    assert job.fetch(admin, names, out, timeout=600) == 1
    data = json.loads((out / "k8s-sec-report.json").read_text())
    assert data["certification"]["verdict"] == "not certified"
    reasons = [c.get("reason", "") for c in data["cases"]]
    assert any("create pods/exec" in r for r in reasons), reasons
    nothing_left(admin, names)


def test_a_job_killed_mid_run_leaves_nothing_once_fetched(local_cluster, admin, runner_image, tmp_path):
    profile_with_local_images(local_cluster, tmp_path)
    names = Names("it-killed")
    job.apply(admin, objects(names, image=runner_image, pull_policy="Never", profile=(tmp_path / "profile.yaml").read_text(),
                         allow_cluster_changes=True, pytest_args=["--k8s-sec-behaviours=NETPOL-1,NETPOL-2"]))
    core = client.CoreV1Api(admin)
    wait_for("the suite in the Job to make its lab", lambda: labelled(admin, terminating=False), timeout=120, interval=1)
    pod = core.list_namespaced_pod(names.namespace, label_selector="job-name=k8s-sec").items[0]
    core.delete_namespaced_pod(pod.metadata.name, names.namespace, grace_period_seconds=0)
    with pytest.raises(Exception, match="ended without reports"):
        job.fetch(admin, names, tmp_path / "out", timeout=300)
    wait_for("the killed run's namespaces to go", lambda: labelled(admin, terminating=False), timeout=120,
             ready=lambda left: not left)
    nothing_left(admin, names)
