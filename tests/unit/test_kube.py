"""Which server versions the suite supports."""

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.kube import supported_version


@pytest.mark.parametrize("git, major, minor, ok", [
    ("v1.37.2", "1", "37", True), ("v1.30.0-gke.1", "1", "30+", True),
    ("v1.29.9", "1", "29", False), ("v1.25.0", "1", "25", False), ("v2.0.0", "2", "0", False)])
def test_supported_server_versions(git, major, minor, ok):
    if ok:
        assert supported_version(git, major, minor).git_version == git
    else:
        with pytest.raises(K8sSecError, match=f"runs Kubernetes {git}; pytest-k8ssec needs 1.30 or newer.*upgrade"):
            supported_version(git, major, minor)
