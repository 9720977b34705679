"""The local provider's build: go.mod generated from a release's own, and version stamps."""

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.local.build import check_upgrade, kubernetes_gomod, version_ldflags

UPSTREAM = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	k8s.io/api v0.0.0
	github.com/x/y v1.2.3
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_gomod_replaces_each_staging_module_with_its_published_version():
    text = kubernetes_gomod(UPSTREAM, "v1.37.2")
    assert "require k8s.io/kubernetes v1.37.2" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2" in text and "\tk8s.io/client-go => k8s.io/client-go v0.37.2" in text
    assert "go 1.26.0" in text and "godebug default=go1.26" in text
    assert "github.com/x/y" not in text  # the release's own requirements come in through the module graph


def test_gomod_rejects_a_malformed_version():
    with pytest.raises(K8sSecError, match="must look like v1.Y.Z"):
        kubernetes_gomod(UPSTREAM, "1.37")


def test_version_is_stamped_for_server_and_client_packages():
    flags = version_ldflags("v1.36.3")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.36.3" in flags and f"-X {pkg}.gitMinor=36" in flags


@pytest.mark.parametrize("current, target, message", [
    ("v1.37.2", "v1.36.3", "is not newer than the running v1.37.2"),
    ("v1.37.2", "v1.37.2", "is not newer"),
    ("v1.35.4", "v1.37.2", "skips a minor version; Kubernetes upgrades one at a time: upgrade to v1.36.Z first"),
    ("v1.36.3", "1.37", "must look like v1.Y.Z")])
def test_an_upgrade_goes_forward_one_minor_at_a_time(current, target, message):
    with pytest.raises(K8sSecError, match=message):
        check_upgrade(current, target)
    check_upgrade("v1.36.3", "v1.37.2")
    check_upgrade("v1.37.1", "v1.37.2")
