"""The in-cluster manifest: what it applies, and the rights it grants with and without cluster changes."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_k8ssec.incluster.manifest import LABEL, Names, objects

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def test_the_manifest_command_prints_every_object_labelled_in_the_order_to_apply():
    out = subprocess.run([sys.executable, "-m", "pytest_k8ssec.incluster", "manifest", "--name", "shop", "--",
                          "--k8s-sec-behaviours=RBAC-1"], capture_output=True, text=True, check=True).stdout
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Job"]
    assert all(d["metadata"]["labels"][LABEL] == "shop" for d in docs)
    job = docs[-1]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["--", "--k8s-sec-behaviours=RBAC-1"]
    assert job["securityContext"]["runAsNonRoot"], "the runner passes the restricted Pod Security level"


def test_cluster_admin_only_when_cluster_changes_are_asked_for():
    namespaced = objects(Names(), profile="name: p")
    binding = next(d for d in namespaced if d["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "k8s-sec-incluster"
    assert not any("*" in rule["verbs"] for d in namespaced if d["kind"] == "ClusterRole" for rule in d["rules"])
    changes = objects(Names(), allow_cluster_changes=True)
    assert next(d for d in changes if d["kind"] == "ClusterRoleBinding")["roleRef"]["name"] == "cluster-admin"
    assert "--k8s-sec-allow-cluster-changes" in changes[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert next(d for d in namespaced if d["kind"] == "ConfigMap")["data"] == {"profile.yaml": "name: p"}


def test_a_name_that_is_no_dns_label_is_refused():
    with pytest.raises(ValueError, match="DNS label"):
        Names("Shop_1")


def test_a_claims_file_goes_into_the_job_with_the_pod_files_it_names():
    out = subprocess.run([sys.executable, "-m", "pytest_k8ssec.incluster", "manifest", "--claims", str(SHOP / "claims.yaml")],
                         capture_output=True, text=True, check=True).stdout
    docs = list(yaml.safe_load_all(out))
    inputs = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert set(inputs) == {"claims.yaml", "restricted-pod.yaml"}
    assert "--k8s-sec-claims=/input/claims.yaml" in docs[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
