"""An in-place upgrade of the real local cluster, checked the way a platform team would run it.

The cluster starts on the previous minor release; the whole suite runs and its report is kept.
Objects made before the upgrade (a namespace, a RoleBinding, a NetworkPolicy) must still be
there and still be enforced after it, and the suite run against the kept report must find no
regression. Then the upgraded API server is restarted without the PodSecurity admission plugin,
the kind of slip an upgrade makes: the run against the same report must fail and name it.

Named to run last: it replaces the session's cluster, and leaves a fresh one of the default
release behind.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from pytest_k8ssec import rbac, reachability
from pytest_k8ssec.access import Question, subject_can_i
from pytest_k8ssec.kube import api_client
from pytest_k8ssec.local.build import KUBERNETES_COMMANDS
from pytest_k8ssec.local.cluster import LocalCluster
from pytest_k8ssec.local.upgrade import upgrade, versions
from pytest_k8ssec.netpol import policies as np
from pytest_k8ssec.netpol.model import Model, Namespace, Pod, Port
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.run import Run
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION

from controls import apiserver_without

PREVIOUS = "v1.36.3"  # the previous minor's release the Go module proxy serves
READERS = "k8ssec-upgrade-readers"
WEB = {"run": "web"}
LAB = Model(namespaces=(Namespace("kept"), Namespace("client")),
            pods=(Pod("kept", "web", WEB, ports=(Port(8080, "http"),)), Pod("client", "access", {"run": "access"})))


@pytest.fixture
def previous_release(local_cluster):
    """The session's cluster replaced by one of the previous minor; afterwards a fresh default one."""
    local_cluster.down()
    cluster = LocalCluster(local_cluster.run_dir, local_cluster.cache, PREVIOUS)
    try:
        cluster.up(load_profile())
        yield cluster
    finally:
        cluster.down()
        local_cluster.up(load_profile())


def test_upgrade_in_place_keeps_objects_and_behaviours_and_a_dropped_plugin_regresses(previous_release, suite, pytester):
    before = suite("--k8s-sec-report=before")
    assert before.ret == 0, before.stdout.str()[-3000:]
    baseline = pytester.path / "before" / "k8s-sec-report.json"

    api = api_client(str(previous_release.layout.admin_kubeconfig))
    run = Run(api)
    run.start()
    try:
        kept = _objects_before_the_upgrade(run, api, previous_release)
        upgrade(previous_release, DEFAULT_K8S_VERSION)
        assert versions(previous_release) == {name: DEFAULT_K8S_VERSION for name in KUBERNETES_COMMANDS}
        assert client.VersionApi(api).get_code().git_version == DEFAULT_K8S_VERSION
        _still_there_and_enforced(api, kept)
    finally:
        assert not run.finish(), "objects of the upgrade check remained"

    after = suite(f"--k8s-sec-baseline={baseline}", "--k8s-sec-report=after")
    assert after.ret == 0, after.stdout.str()[-3000:]
    after.stdout.fnmatch_lines([f"k8s-sec: since the baseline (*, certified; Kubernetes {PREVIOUS} -> {DEFAULT_K8S_VERSION}): *"])
    assert "REGRESSED" not in after.stdout.str()

    with apiserver_without(previous_release, "PodSecurity"):
        slipped = suite(f"--k8s-sec-baseline={baseline}", "--k8s-sec-behaviours=PRIV-1")
    assert slipped.ret == 1
    slipped.stdout.fnmatch_lines(["k8s-sec: since the baseline (*): * regressed*",
                                  "k8s-sec:   REGRESSED PRIV-1 test_privileged_pod_rejected*: pass -> fail*"])


def _objects_before_the_upgrade(run: Run, api: client.ApiClient, cluster: LocalCluster) -> dict:
    namespaces = {ns.key: run.namespace(f"upgrade-{ns.key}") for ns in LAB.namespaces}
    lab = reachability.Lab(run, api, LAB.bind(namespaces), cluster.handle().images)
    deny = [np.default_deny_ingress(namespaces["kept"], labels=run.labels)]
    lab.judge(lab.check(deny))  # enforced before, with its positive control
    run.create(rbac.binding("readers", "ClusterRole", "view", [rbac.group(READERS)], namespaces["kept"]))
    return {"lab": lab, "deny": deny, "namespaces": namespaces}


def _still_there_and_enforced(api: client.ApiClient, kept: dict) -> None:
    ns = kept["namespaces"]["kept"]
    client.CoreV1Api(api).read_namespace(ns)
    client.RbacAuthorizationV1Api(api).read_namespaced_role_binding("readers", ns)
    client.NetworkingV1Api(api).read_namespaced_network_policy("default-deny", ns)
    pods = Question("list", "", "pods", namespace=ns)
    assert subject_can_i(api, pods, "someone", [READERS]), "the RoleBinding made before the upgrade grants nothing after it"
    assert not subject_can_i(api, Question("list", "", "pods", namespace=kept["namespaces"]["client"]), "someone", [READERS])
    lab = kept["lab"]
    lab.judge(lab.check(kept["deny"], control_first=False))  # the same policy object, never re-created
