"""The claims file and the public fixtures on a user's real app: examples/shop on the local cluster.

Green as shipped; one NetworkPolicy edited wrong fails the claim it breaks, naming the cell and the
policies in force; the same claims written as a pytest file give the same verdicts; a UDP claim
is judged by a DNS reply, never by a send; bad claims files stop the run with one line.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, utils

from pytest_k8ssec.claimprobe import ProbeLab
from pytest_k8ssec.claims import Source
from pytest_k8ssec.cleanup import remove_leftovers
from pytest_k8ssec.local.images import IMAGES
from pytest_k8ssec.local.layout import NODE_IP
from pytest_k8ssec.run import RUN_LABEL, Run, stale_runs
from pytest_k8ssec.waits import wait_for

SHOP = Path(__file__).parents[2] / "examples" / "shop"
NAMESPACES = ("shop-web", "shop-data")
LOCAL_DNS = {"ip": NODE_IP}  # CoreDNS runs on the node here; elsewhere it is the kube-dns Service


@pytest.fixture(scope="module")
def shop(admin):
    """The shop as its owners deploy it, with the cluster's own busybox image; removed afterwards."""
    core = client.CoreV1Api(admin)

    def present() -> list[str]:
        return [ns.metadata.name for ns in core.list_namespace().items if ns.metadata.name in NAMESPACES]
    wait_for("an earlier shop's namespaces to go", present, timeout=120, ready=lambda left: not left)
    docs = [d for d in yaml.safe_load_all(SHOP.joinpath("shop.yaml").read_text().replace(
        "busybox:1.36", IMAGES["busybox"].reference)) if d]
    utils.create_from_yaml(admin, yaml_objects=docs)
    apps = client.AppsV1Api(admin)

    def unready() -> list[str]:
        return [f"{ns}/{d.metadata.name}" for ns in NAMESPACES for d in apps.list_namespaced_deployment(ns).items
                if (d.status.ready_replicas or 0) < 1]
    wait_for("the shop's deployments to be ready", unready, timeout=120, ready=lambda left: not left)
    yield admin
    for ns in NAMESPACES:  # busybox httpd ignores SIGTERM: its pods go without the 30 s grace
        client.AppsV1Api(admin).delete_collection_namespaced_deployment(ns)
        core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
        core.delete_namespace(ns)
    wait_for("the shop's namespaces to go", present, timeout=120, ready=lambda left: not left)


def local_claims(directory: Path, extra: list[dict] | None = None) -> Path:
    """The shop's claims file with the local cluster's DNS address, and the pod file beside it."""
    data = yaml.safe_load(SHOP.joinpath("claims.yaml").read_text())
    for claim in data["claims"]:
        if claim.get("reach", {}).get("to") == {"service": "kube-system/kube-dns"}:
            claim["reach"]["to"] = LOCAL_DNS
    data["claims"] += extra or []
    shutil.copy(SHOP / "restricted-pod.yaml", directory)
    path = directory / "claims.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def statuses(report: Path) -> dict[str, str]:
    return {b: v["status"] for b, v in json.loads(report.read_text())["certification"]["behaviours"].items()}


def probe_pods(admin) -> list[str]:
    return [p.metadata.name for ns in NAMESPACES
            for p in client.CoreV1Api(admin).list_namespaced_pod(ns, label_selector=RUN_LABEL).items]


def test_the_shops_claims_hold_and_a_wrong_policy_fails_naming_the_claim_and_cell(shop, suite, pytester, monkeypatch):
    claims = local_claims(pytester.path)
    t0 = time.monotonic()
    result = suite("--k8s-sec-suite=none", f"--k8s-sec-claims={claims}", "--k8s-sec-allow-probe-pods",
                   "--k8s-sec-report=file")
    print(f"the shop's claims file: {time.monotonic() - t0:.1f} s for {len(statuses(pytester.path / 'file/k8s-sec-report.json'))} claims")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*CERTIFIED: every required behaviour was observed (10 pass)*"])
    assert not probe_pods(shop), "probe pods remained in the shop's namespaces"

    # without consent to probe pods, the reachability claims are not observed, and nothing is made in the shop
    result = suite("--k8s-sec-suite=none", f"--k8s-sec-claims={claims}", "--k8s-sec-report=no-consent", "-rs")
    assert result.ret == 1
    no_consent = statuses(pytester.path / "no-consent/k8s-sec-report.json")
    assert [b for b, s in no_consent.items() if s == "not observed"] == [f"SHOP-{n}" for n in range(1, 7)], no_consent
    result.stdout.fnmatch_lines(["*reachability needs probe pods in your namespaces: pass --k8s-sec-allow-probe-pods*"])

    # the same claims as a pytest file with the public fixtures
    monkeypatch.setenv("K8S_DNS", json.dumps(LOCAL_DNS))
    shutil.copy(SHOP / "test_shop.py", pytester.path)
    result = suite(f"--k8s-sec-claims={SHOP / 'declared.yaml'}", "--k8s-sec-allow-probe-pods", "--k8s-sec-report=tests",
                   "test_shop.py")
    assert result.ret == 0, result.stdout.str()
    assert statuses(pytester.path / "tests/k8s-sec-report.json") == statuses(pytester.path / "file/k8s-sec-report.json")

    # one policy edited wrong: the db admits every pod of shop-web, not only the api
    net = client.NetworkingV1Api(shop)
    net.patch_namespaced_network_policy("db-from-api", "shop-data", [
        {"op": "replace", "path": "/spec/ingress/0/from/0/podSelector", "value": {}}])
    try:
        result = suite("--k8s-sec-suite=none", f"--k8s-sec-claims={claims}", "--k8s-sec-allow-probe-pods",
                       "--k8s-sec-report=broken")
        assert result.ret == 1, result.stdout.str()
        broken = statuses(pytester.path / "broken/k8s-sec-report.json")
        assert {b for b, s in broken.items() if s != "pass"} == {"SHOP-3"}, broken
        result.stdout.fnmatch_lines(["*SHOP-3 (the frontend cannot reach the db): shop-web{app=frontend} -> shop-data/db-*"
                                     ":5432/TCP: allowed (connected) / allowed (connected) (expected blocked); policies "
                                     "in force: shop-data/db-from-api (ingress), shop-data/default-deny (ingress)*"])
        result = suite(f"--k8s-sec-claims={SHOP / 'declared.yaml'}", "--k8s-sec-allow-probe-pods",
                       "--k8s-sec-report=tests-broken", "test_shop.py")
        assert statuses(pytester.path / "tests-broken/k8s-sec-report.json") == broken
    finally:
        net.patch_namespaced_network_policy("db-from-api", "shop-data", [
            {"op": "replace", "path": "/spec/ingress/0/from/0/podSelector", "value": {"matchLabels": {"app": "api"}}}])
    assert not probe_pods(shop)


def test_a_udp_claim_is_judged_by_a_reply_never_by_a_send(shop, suite, pytester):
    """Nothing serves DNS on the frontend pod, which every policy lets the api reach: a send gets no reply there."""
    frontend = {"namespace": "shop-web", "pods": {"app": "frontend"}}
    no_dns = [
        {"id": "UDP-1", "reach": {"from": {"namespace": "shop-web", "pods": {"app": "api"}}, "to": frontend,
                                  "port": 53, "protocol": "UDP", "expect": "allowed"}},
        {"id": "UDP-2", "reach": {"from": {"namespace": "shop-web", "pods": {"app": "api"}}, "to": frontend,
                                  "port": 53, "protocol": "UDP", "expect": "blocked",
                                  "control": {"from": {"namespace": "shop-web"}}}},
    ]
    data = {"claims": no_dns}
    claims = pytester.path / "udp.yaml"
    claims.write_text(yaml.safe_dump(data))
    result = suite("--k8s-sec-suite=none", f"--k8s-sec-claims={claims}", "--k8s-sec-allow-probe-pods",
                   "--k8s-sec-report=udp", "-rs")
    assert result.ret == 1, result.stdout.str()
    assert statuses(pytester.path / "udp/k8s-sec-report.json") == {"UDP-1": "fail", "UDP-2": "not observed"}
    text = result.stdout.str()
    assert "): shop-web{app=api} -> shop-web/frontend-" in text and "/UDP: blocked (no reply" in text, text
    assert "(expected allowed)" in text, text
    assert "answered from no allowed source (shop-web{any pod})" in text, text


@pytest.mark.parametrize("claim, problem", [
    ({"id": "BAD-1", "reach": {"from": {"namespace": "shop-web"}, "to": {"service": "shop-data/db"}, "port": 5432,
                               "expect": "blocked", "colour": "red"}},
     "claim BAD-1: reach.colour: must be one of the known keys (control, dns_name, expect, from, port, protocol, to)"),
    ({"id": "BAD-2", "can-i": {"subject": {"user": "ci"}, "verb": "get", "resource": "secrets", "namespace": "shop-nowhere",
                               "expect": "no"}},
     "claim BAD-2: can-i.namespace: namespace shop-nowhere does not exist on this cluster"),
    ({"id": "BAD-3", "reach": {"from": {"namespace": "shop-web", "pods": {"app": "checkout"}},
                               "to": {"service": "shop-data/db"}, "port": 5432, "expect": "allowed"}},
     "claim BAD-3: reach.from.pods: app=checkout matches no pod in namespace shop-web"),
    ({"id": "BAD-4", "reach": {"from": {"namespace": "shop-web"}, "to": {"service": "shop-data/db"}, "port": "5432/tcp",
                               "expect": "allowed"}},
     "claim BAD-4: reach.port: must be a port from 1 to 65535 (got '5432/tcp')"),
])
def test_a_bad_claims_file_stops_the_run_with_one_line_and_makes_nothing(shop, k8s_sec, pytester, claim, problem):
    path = pytester.path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [claim]}))
    line = k8s_sec("--k8s-sec-cluster=local", "--k8s-sec-suite=none", f"--k8s-sec-claims={path}",
                   "--k8s-sec-allow-probe-pods", exit_code=3)
    assert f"k8s-sec: claims file {path}: {problem}" in line, line


def test_a_probe_pod_is_adopted_by_nothing_serves_nothing_and_a_killed_runs_are_collected(shop, local_cluster):
    """A probe pod with the api's labels: the api's ReplicaSet does not adopt it, its Service sends it nothing,
    and when its run dies without cleaning up, the next run removes it."""
    dead = Run(shop)
    dead.start()
    lab = ProbeLab(dead, shop, local_cluster.handle().images)
    lab.start([Source("shop-web", (("app", "api"),))])
    core, name = client.CoreV1Api(shop), lab.pods[Source("shop-web", (("app", "api"),))]
    dead._stop.set()  # killed: its heartbeat stops, nothing is removed
    owners = core.read_namespaced_pod(name, "shop-web").metadata.owner_references
    assert [(o.kind, o.name, o.controller) for o in owners] == [("Namespace", dead.control_ns, True)]
    rs = client.AppsV1Api(shop).list_namespaced_replica_set("shop-web", label_selector="app=api").items[0]
    assert rs.status.replicas == 1, "the api's ReplicaSet counted the probe pod"
    slices = client.DiscoveryV1Api(shop).list_namespaced_endpoint_slice(
        "shop-web", label_selector="kubernetes.io/service-name=api").items
    ready = {e.target_ref.name for s in slices for e in s.endpoints or [] if e.conditions.ready}
    assert ready and name not in ready, f"the api Service sends traffic to the probe pod: {ready}"
    wait_for(f"run {dead.id} to go stale", lambda: stale_runs(shop), timeout=90, interval=1,
             ready=lambda runs: dead.id in runs)
    notes = remove_leftovers(shop)
    assert f"removed the leftovers of killed run {dead.id}" in notes
    assert not probe_pods(shop), "the killed run's probe pod remained"
