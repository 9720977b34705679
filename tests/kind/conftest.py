"""kind + Calico from the offline kit: these tests run through `kit/with-kit.sh`, which starts
Docker and the kit's registry and sets K8SSEC_KIND_ARGS; anywhere else they skip, saying so."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from pytest_k8ssec.cluster.kind import KEPT_NAME, KIND_VERSION
from pytest_k8ssec.settings import cache_dir


@pytest.fixture(scope="session")
def kind_args() -> list[str]:
    args = os.environ.get("K8SSEC_KIND_ARGS")
    if not args:
        pytest.skip("needs Docker and the offline kit: run `bash kit/with-kit.sh python3 -m pytest tests/kind`")
    return shlex.split(args)


@pytest.fixture(scope="session")
def real_cache():
    """The cache holding the pinned kind binary, found before pytester gives each test its own HOME."""
    return cache_dir()


@pytest.fixture
def kind_suite(kind_args, real_cache, pytester, monkeypatch):
    """Run the installed suite on kind in a subprocess; `without` drops options (e.g. the mirror), `profile` is one's text."""
    monkeypatch.setenv("K8SSEC_CACHE", str(real_cache))

    def run(*args: str, without: str = "__none__", profile: str | None = None):
        chosen = [a for a in kind_args if not a.startswith(without)]
        if profile is not None:
            (pytester.path / "profile.yaml").write_text(profile)
            args = (f"--k8s-sec-profile={pytester.path / 'profile.yaml'}", *args)
        return pytester.runpytest_subprocess("--k8s-sec", *chosen, "-p", "no:cacheprovider", *args)
    return run


@pytest.fixture(scope="module")
def kept_cluster(kind_args, real_cache):
    """The name of the cluster `--k8s-sec-keep-cluster` makes: none of that name before the tests, none after."""
    delete = [str(real_cache / "kind" / f"kind-{KIND_VERSION}"), "delete", "cluster", f"--name={KEPT_NAME}"]
    subprocess.run(delete, capture_output=True)  # one an interrupted run kept would carry its state over
    yield KEPT_NAME
    subprocess.run(delete, capture_output=True)
