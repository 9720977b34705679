"""The kind provider's generated files, checked field by field, and how `auto` picks it."""

import os

import pytest
import yaml

from pytest_k8ssec.cluster import kind
from pytest_k8ssec.cluster.select import choose_provider
from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.settings import Settings

PROFILE = load_profile()


def args_of(patch):
    """extraArgs as a dict, whichever kubeadm shape the patch uses."""
    extra = patch["apiServer"]["extraArgs"]
    return {a["name"]: a["value"] for a in extra} if isinstance(extra, list) else extra


def test_kind_config_disables_the_default_cni_and_uses_calicos_subnet(tmp_path):
    config = kind.kind_config("1.37", workers=2, host_config_dir=tmp_path)
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert config["networking"] == {"disableDefaultCNI": True, "podSubnet": "192.168.0.0/16"}
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    mount = config["nodes"][0]["extraMounts"][0]
    assert mount == {"hostPath": str(tmp_path), "containerPath": kind.NODE_CONFIG_DIR, "readOnly": True}
    assert "kubeadmConfigPatches" not in config["nodes"][1]


def test_patch_is_valid_yaml_of_a_cluster_configuration(tmp_path):
    config = kind.kind_config("1.37", workers=0, host_config_dir=tmp_path)
    (text,) = config["nodes"][0]["kubeadmConfigPatches"]
    patch = yaml.safe_load(text)
    assert patch["kind"] == "ClusterConfiguration" and "apiVersion" not in patch  # matches kind's own version
    assert len(config["nodes"]) == 1


@pytest.mark.parametrize("minor, shape", [("1.37", list), ("1.31", list), ("1.30", dict)])
def test_extra_args_use_the_shape_of_the_kubeadm_api_for_the_version(minor, shape):
    assert isinstance(kind.kubeadm_patch(minor)["apiServer"]["extraArgs"], shape)


def test_api_server_gets_the_hardening_flags_and_their_files():
    args = args_of(kind.kubeadm_patch("1.37"))
    assert args["authorization-mode"] == "Node,RBAC"
    assert set(args["enable-admission-plugins"].split(",")) >= {"NodeRestriction", "PodSecurity", "ValidatingAdmissionPolicy"}
    assert args["audit-policy-file"] == f"{kind.NODE_CONFIG_DIR}/audit-policy.yaml"
    assert args["admission-control-config-file"] == f"{kind.NODE_CONFIG_DIR}/admission.yaml"
    assert args["audit-log-path"] == kind.AUDIT_LOG and args["audit-log-format"] == "json"
    volumes = {v["name"]: v for v in kind.kubeadm_patch("1.37")["apiServer"]["extraVolumes"]}
    assert volumes["k8s-sec-config"]["mountPath"] == kind.NODE_CONFIG_DIR and volumes["k8s-sec-config"]["readOnly"]
    assert kind.AUDIT_LOG.startswith(volumes["k8s-sec-audit-log"]["mountPath"] + "/")
    assert not volumes["k8s-sec-audit-log"]["readOnly"]


def test_node_files_hold_the_profiles_audit_policy_and_pod_security_defaults():
    files = kind.node_files(PROFILE)
    assert set(files) == {"audit-policy.yaml", "admission.yaml"}
    assert yaml.safe_load(files["audit-policy.yaml"]) == PROFILE.audit_policy
    admission = yaml.safe_load(files["admission.yaml"])
    (psa,) = admission["plugins"]
    assert psa["name"] == "PodSecurity"
    assert psa["configuration"]["defaults"]["enforce"] == "baseline"
    assert psa["configuration"]["exemptions"]["namespaces"] == ["kube-system"]


def test_node_image_is_pinned_per_minor_and_can_be_overridden():
    assert kind.node_image("v1.37.2", None).startswith("kindest/node:v1.37.")
    assert "@sha256:" in kind.node_image("v1.35.1", None)
    assert kind.node_image("v1.37.2", "mirror.example/kindest/node:v1.37.0") == "mirror.example/kindest/node:v1.37.0"
    with pytest.raises(K8sSecError, match="no pinned node image for Kubernetes 1.29.*--k8s-sec-kind-image"):
        kind.node_image("v1.29.0", None)
    with pytest.raises(K8sSecError, match="is not a Kubernetes version"):
        kind.node_image("latest", None)


def test_calico_manifest_from_a_local_file_and_clear_errors(tmp_path):
    manifest = tmp_path / "calico.yaml"
    manifest.write_text("kind: DaemonSet\nmetadata: {name: calico-node}\n---\n---\nkind: ConfigMap\n")
    assert [d["kind"] for d in kind.calico_manifest(str(manifest))] == ["DaemonSet", "ConfigMap"]
    with pytest.raises(K8sSecError, match="could not read the Calico manifest"):
        kind.calico_manifest(str(tmp_path / "missing.yaml"))
    with pytest.raises(K8sSecError, match="could not fetch the Calico manifest .*--k8s-sec-calico-manifest"):
        kind.calico_manifest("http://127.0.0.1:9/calico.yaml")
    assert kind.CALICO_VERSION in kind.CALICO_MANIFEST


def fake_docker(tmp_path, monkeypatch, script):
    """A `docker` command on PATH that behaves as `script` says (the daemon is what is faked, not the cluster)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\n" + script)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")


def test_auto_chooses_kind_only_when_docker_answers(tmp_path, monkeypatch):
    fake_docker(tmp_path, monkeypatch, "echo 29.1.0\n")
    assert choose_provider(Settings()) == ("kind", "Docker 29.1.0 answers")


def test_auto_falls_back_to_local_and_says_why_when_docker_is_down(tmp_path, monkeypatch):
    fake_docker(tmp_path, monkeypatch, "echo 'Cannot connect to the Docker daemon' >&2; exit 1\n")
    provider, why = choose_provider(Settings())
    assert provider == "local" and "Docker is not running" in why and "Cannot connect" in why


def test_auto_falls_back_to_local_without_docker(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert choose_provider(Settings()) == ("local", "no kubeconfig given and Docker is not installed (no `docker` command)")


def test_a_kubeconfig_wins_over_docker(tmp_path, monkeypatch):
    fake_docker(tmp_path, monkeypatch, "echo 29.1.0\n")
    assert choose_provider(Settings(kubeconfig=tmp_path / "k"))[0] == "existing"


def test_cgroup_v1_hosts_are_allowed_from_1_35_where_the_kubelet_refuses_them(tmp_path):
    (patch,) = kind.kind_config("1.37", workers=0, host_config_dir=tmp_path)["kubeadmConfigPatches"]
    assert yaml.safe_load(patch) == {"kind": "KubeletConfiguration", "failCgroupV1": False}
    assert "kubeadmConfigPatches" not in kind.kind_config("1.34", workers=0, host_config_dir=tmp_path)


def test_registry_mirror_serves_the_three_registries_the_suite_pulls_from(tmp_path):
    config = kind.kind_config("1.37", workers=1, host_config_dir=tmp_path, mirror="kind-registry:5000")
    (patch,) = config["containerdConfigPatches"]
    for registry in ("docker.io", "registry.k8s.io", "quay.io"):
        assert f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]\n  endpoint = ["http://kind-registry:5000"]' in patch
    assert "containerdConfigPatches" not in kind.kind_config("1.37", workers=1, host_config_dir=tmp_path)
