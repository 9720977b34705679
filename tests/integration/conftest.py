"""The real local cluster, started once for the project's integration tests (reused if already up)."""

from __future__ import annotations

import pytest
from kubernetes import client

from pytest_k8ssec.kube import api_client
from pytest_k8ssec.local.cluster import LocalCluster, default_run_dir
from pytest_k8ssec.profile import load_profile
from pytest_k8ssec.settings import DEFAULT_K8S_VERSION, cache_dir
from pytest_k8ssec.run import Run, labelled


@pytest.fixture(scope="session")
def local_cluster():
    cluster = LocalCluster(default_run_dir(), cache_dir(), DEFAULT_K8S_VERSION)
    started_here = not cluster.is_up()
    cluster.up(load_profile())
    yield cluster
    if started_here:
        cluster.down()


@pytest.fixture(scope="session")
def admin(local_cluster) -> client.ApiClient:
    return api_client(str(local_cluster.layout.admin_kubeconfig))


@pytest.fixture
def run(admin):
    """A labelled run for objects a test creates directly; everything is removed afterwards."""
    r = Run(admin)
    r.start()  # a heartbeat, so the suites these tests start do not take its objects for a killed run's
    yield r
    assert not r.finish(), "objects of the test's run remained"


@pytest.fixture
def suite(pytester, local_cluster, monkeypatch):
    """Run the installed conformance suite in a subprocess; the local provider reuses the running cluster."""
    # pytester gives the subprocess its own HOME (already set here): point it at the real cache
    # the session-scoped cluster was started from (binaries, running cluster).
    monkeypatch.setenv("K8SSEC_CACHE", str(local_cluster.cache))

    def run_suite(*args: str, profile: str | None = None):
        extra = []
        if profile is not None:
            path = pytester.path / "profile.yaml"
            path.write_text(profile)
            extra.append(f"--k8s-sec-profile={path}")
        return pytester.runpytest_subprocess("--k8s-sec", "--k8s-sec-cluster=local", "-p", "no:cacheprovider", *extra, *args)
    return run_suite


@pytest.fixture
def k8s_sec(pytester, admin, local_cluster, monkeypatch):
    """Run `pytest --k8s-sec ARGS`; check the run failed with one `k8s-sec:` line and created nothing."""
    monkeypatch.setenv("K8SSEC_CACHE", str(local_cluster.cache))

    def run(*args: str, exit_code: int | None = None):
        before = labelled(admin, terminating=False)
        result = pytester.runpytest_subprocess("--k8s-sec", "-p", "no:cacheprovider", *args)
        text = "\n".join(result.outlines + result.errlines)
        lines = [line for line in text.splitlines() if "k8s-sec:" in line]
        assert result.ret not in (0, 5) if exit_code is None else result.ret == exit_code, text
        assert len(lines) == 1 and "Traceback" not in text, text
        assert labelled(admin, terminating=False) == before, "the failed run left objects behind"
        return lines[0]
    return run
