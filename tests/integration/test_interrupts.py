"""Killed runs: SIGINT and SIGTERM clean up on the way out; after SIGKILL the next run does.

Each test starts the whole suite as a real subprocess on the local cluster, waits until it has
created objects of several kinds (midway), signals it, and then lists what carries the run label.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from pytest_k8ssec.run import labelled, stale_runs
from pytest_k8ssec.waits import wait_for

from controls import nothing_left


@pytest.fixture
def start_run(local_cluster, tmp_path):
    procs = []

    def start() -> subprocess.Popen:
        env = {**os.environ, "K8SSEC_CACHE": str(local_cluster.cache)}
        # the child gets the default SIGINT disposition even where these tests run with SIGINT
        # ignored (a background job of a script, nohup), as a user's pytest would
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=local",
                                 "-p", "no:cacheprovider", "-q"], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def midway(admin) -> list[str]:
    """Wait until the run has namespaces, cluster-scoped RBAC and an admission policy: it is into its first cases.

    Not its CSR: the certificate user is made by the last module's cases, too near the run's end
    for the signal to land before it finishes on a quick cluster."""
    def kinds(objects: list[str]) -> set[str]:
        return {o.split("/")[0] for o in objects}
    return wait_for("the run to create namespaces, a ClusterRole and a ValidatingAdmissionPolicy",
                    lambda: labelled(admin, terminating=False), timeout=120, interval=0.2, max_interval=0.5,
                    ready=lambda objs: {"Namespace", "ClusterRole", "ValidatingAdmissionPolicy"} <= kinds(objs))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_removes_everything_it_made(sig, start_run, admin):
    assert labelled(admin, terminating=False) == [], "the cluster must start clean"
    proc = start_run()
    made = midway(admin)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode != 0, output
    assert made and nothing_left(admin) == [], output


def test_killed_run_is_cleaned_by_the_next_run_which_says_so(start_run, admin, local_cluster):
    assert labelled(admin, terminating=False) == [], "the cluster must start clean"
    proc = start_run()
    midway(admin)
    proc.kill()
    proc.wait()
    left = labelled(admin, terminating=False)
    assert left, "SIGKILL leaves the run no chance to clean up"
    killed = {o.split("-")[1] for o in left if o.startswith("Namespace/k8ssec-")}
    assert len(killed) == 1

    # Until its heartbeat is stale the killed run looks alive, and a cleanup leaves it alone.
    early = subprocess.run([sys.executable, "-m", "pytest", "--k8s-sec-cleanup", "--k8s-sec-cluster=local"],
                           capture_output=True, text=True, env={**os.environ, "K8SSEC_CACHE": str(local_cluster.cache)})
    assert early.returncode == 0 and "left alone" in early.stdout, early.stdout + early.stderr
    wait_for("the killed run's heartbeat to go stale", lambda: stale_runs(admin), timeout=60, ready=bool)

    next_run = start_run()
    output, _ = next_run.communicate(timeout=600)
    assert next_run.returncode == 0, output
    (run_id,) = killed
    assert output.count(f"k8s-sec: removed the leftovers of killed run {run_id}") == 1, output
    assert nothing_left(admin) == [], output
