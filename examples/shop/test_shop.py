"""The shop's claims (claims.yaml) as pytest tests, with the plugin's public fixtures.

Run with the IDs declared:
    pytest --k8s-sec --k8s-sec-claims examples/shop/declared.yaml --k8s-sec-allow-probe-pods examples/shop/test_shop.py
K8S_DNS names the cluster's DNS as a claims-file destination (default: the kube-dns Service).
"""

import json
import os
from pathlib import Path

import pytest
import yaml

FRONTEND = {"namespace": "shop-web", "pods": {"app": "frontend"}}
API = {"namespace": "shop-web", "pods": {"app": "api"}}
DB = {"namespace": "shop-data", "pods": {"app": "db"}}
DNS = json.loads(os.environ.get("K8S_DNS", '{"service": "kube-system/kube-dns"}'))
CI = "system:serviceaccount:shop-web:ci"
CI_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:shop-web", "system:authenticated"]


@pytest.mark.behaviour("SHOP-1")
def test_frontend_reaches_api(k8s_reach):
    k8s_reach.assert_allowed(FRONTEND, API, 8080)


@pytest.mark.behaviour("SHOP-2")
def test_api_reaches_db_service(k8s_reach):
    k8s_reach.assert_allowed(API, {"service": "shop-data/db"}, 5432)


@pytest.mark.behaviour("SHOP-3")
def test_frontend_cannot_reach_db(k8s_reach):
    k8s_reach.assert_blocked(FRONTEND, DB, 5432, control=API)


@pytest.mark.behaviour("SHOP-4")
def test_db_cannot_reach_api(k8s_reach):
    k8s_reach.assert_blocked(DB, API, 8080, control=FRONTEND)


@pytest.mark.behaviour("SHOP-5")
def test_frontend_resolves_names(k8s_reach):
    k8s_reach.assert_allowed(FRONTEND, DNS, 53, "UDP")


@pytest.mark.behaviour("SHOP-6")
def test_db_resolves_nothing(k8s_reach):
    k8s_reach.assert_blocked(DB, DNS, 53, "UDP", control=FRONTEND)


@pytest.mark.behaviour("SHOP-7")
def test_ci_cannot_read_secrets_in_shop_data(k8s_can_i):
    assert not k8s_can_i("get", "secrets", namespace="shop-data", user=CI, groups=CI_GROUPS)


@pytest.mark.behaviour("SHOP-8")
def test_ci_deploys_to_shop_web(k8s_can_i):
    assert k8s_can_i("create", "deployments", namespace="shop-web", user=CI, groups=CI_GROUPS)


@pytest.mark.behaviour("SHOP-9")
def test_privileged_pod_refused_in_shop_data(k8s_admit):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "escape", "namespace": "shop-data"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]}}
    answer = k8s_admit(pod)
    assert answer.refused, "a privileged pod was admitted in shop-data"


@pytest.mark.behaviour("SHOP-10")
def test_restricted_pod_admitted_in_shop_web(k8s_admit):
    pod = yaml.safe_load((Path(__file__).parent / "restricted-pod.yaml").read_text())
    pod["metadata"]["namespace"] = "shop-web"
    answer = k8s_admit(pod)
    assert answer.admitted, f"the shop's restricted pod was {answer.describe()}: {answer.message}"
