"""NODE-1 on the real local cluster: the default kubelet passes; a kubelet broken in one way fails it, naming the
endpoint and its answer.

Each control restarts the kubelet with one or two flags (they override its configuration file),
runs NODE-1 from this checkout's conformance/test_node.py, and restores the kubelet in a finally.
Run under the cluster lock taken exclusively: other runs' pods would see the kubelet go away.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from controls import certified, failed

NODE_CASES = str(Path(__file__).resolve().parents[2] / "conformance" / "test_node.py")
KUBELET_CASE = "test_kubelet_refuses_pods_without_proper_credentials"
READ_ONLY_CASE = "test_kubelet_read_only_port_does_not_answer"
CONTROL_PLANE_NA = {f"test_control_plane_port_refuses_pods_without_credentials[{c}]"
                    for c in ("etcd", "kube-controller-manager", "kube-scheduler")}


@contextlib.contextmanager
def kubelet_with(local_cluster, *flags: str):
    """Restart the kubelet with `flags`, then restore its recorded command line (waiting until it knows its pods)."""
    local_cluster.start_component("kubelet", list(flags))
    try:
        yield
    finally:
        local_cluster.start_component("kubelet")


def node_run(suite):
    return suite("--k8s-sec-behaviours=NODE-1", "-v", "-rs", "--k8s-sec-report=report", NODE_CASES)


def _report(pytester) -> dict:
    return json.loads((pytester.path / "report" / "k8s-sec-report.json").read_text())


def _rows(report: dict, case: str) -> list[dict]:
    return next(c for c in report["cases"] if c["case"] == case)["evidence"]["endpoints"]


def test_default_kubelet_passes_node1(suite, pytester):
    result = node_run(suite)
    assert result.ret == 0 and certified(result), result.stdout.str()[-3000:]
    report = _report(pytester)
    verdicts = {c["case"]: c["verdict"] for c in report["cases"]}
    assert verdicts[KUBELET_CASE] == verdicts[READ_ONLY_CASE] == "pass", verdicts
    # etcd, the controller-manager and the scheduler listen on 127.0.0.1 here: no pod reaches them
    assert {c for c, v in verdicts.items() if v == "n/a"} == CONTROL_PLANE_NA, verdicts
    result.stdout.fnmatch_lines(["SKIPPED*not applicable: etcd's port is not reachable from pods on this cluster*"])
    rows = _rows(report, KUBELET_CASE)
    observed = {(r["endpoint"].split(":10250")[-1].split("/")[1], r["as"]): r["observed"] for r in rows if ":10250" in r["endpoint"]}
    assert set(observed.values()) == {"HTTP 401", "HTTP 403"} and len(observed) == 8, observed
    assert all(v == "HTTP 401" for (_, who), v in observed.items() if who == "no credentials"), observed
    controls = [r for r in rows if r["from"] == "the suite"]
    assert controls and all(r["verdict"] == "ok" for r in controls), controls
    assert report["controls"]["behaviours"]["NODE-1"]["controls"], report["controls"]["behaviours"]["NODE-1"]
    assert report["claims"]["behaviours"]["NODE-1"] == "posture"


def test_kubelet_with_anonymous_auth_fails_node1(suite, local_cluster):
    """Anonymous requests are now system:anonymous: the webhook still refuses them, but with 403 where 401 is due."""
    with kubelet_with(local_cluster, "--anonymous-auth=true"):
        result = node_run(suite)
    assert not certified(result) and failed(result) == {KUBELET_CASE}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*GET https://*:10250/pods as no credentials from pod probe-0 on *: "
                                 "expected HTTP 401, observed HTTP 403*"])
    assert "no-rights from pod" not in result.stdout.str()  # the token still gets 403: only the anonymous rows fail


def test_kubelet_letting_anonymous_in_fails_node1(suite, local_cluster):
    """Anonymous authentication with AlwaysAllow authorization: the kubelet serves anyone."""
    with kubelet_with(local_cluster, "--anonymous-auth=true", "--authorization-mode=AlwaysAllow"):
        result = node_run(suite)
    assert not certified(result) and failed(result) == {KUBELET_CASE}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*GET https://*:10250/pods as no credentials from pod probe-0 on *: "
                                 "expected HTTP 401, observed HTTP 200*",
                                 "*GET https://*:10250/configz as system:serviceaccount:*:no-rights from pod probe-0 *: "
                                 "expected HTTP 403, observed HTTP 200*"])


def test_kubelet_authorizing_always_fails_node1_on_the_pods_token(suite, local_cluster):
    """AlwaysAllow alone: requests without credentials are still 401, but the pod's own token may do anything."""
    with kubelet_with(local_cluster, "--authorization-mode=AlwaysAllow"):
        result = node_run(suite)
    assert not certified(result) and failed(result) == {KUBELET_CASE}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*GET https://*:10250/metrics as system:serviceaccount:*:no-rights from pod probe-0 *: "
                                 "expected HTTP 403, observed HTTP 200*"])
    assert "as no credentials from pod" not in result.stdout.str()


def test_kubelet_read_only_port_fails_node1(suite, local_cluster):
    with kubelet_with(local_cluster, "--read-only-port=10255"):
        result = node_run(suite)
    assert not certified(result) and failed(result) == {READ_ONLY_CASE}, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*the kubelet's read-only port answers pods*",
                                 "*GET http://*:10255/pods as no credentials from pod probe-0 on *: "
                                 "expected no answer, observed HTTP 200*"])


@pytest.fixture(autouse=True)
def _kubelet_restored(local_cluster):
    """Whatever a control did, the kubelet runs with its recorded command line afterwards."""
    yield
    assert local_cluster.running().get("kubelet"), "the kubelet is not running after the control"
