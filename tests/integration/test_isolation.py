"""The plugin on a cluster it did not create, two runs on one cluster at the same time, and where a run may create."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading

import pytest
import yaml
from kubernetes import client

from pytest_k8ssec.profile import default_profile_path
from pytest_k8ssec.run import RUN_LABEL, labelled

from controls import nothing_left


def profile_with_local_images(local_cluster, directory) -> str:
    """The default profile, with the images this cluster has (it cannot pull any): what an air-gapped user writes."""
    data = yaml.safe_load(default_profile_path().read_text())
    images = dataclasses.asdict(local_cluster.handle().images)
    data["images"] = {**images, "httpd_command": list(images["httpd_command"])}
    path = directory / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return f"--k8s-sec-profile={path}"


def test_existing_cluster_without_opt_in_gets_no_cluster_scoped_change(pytester, local_cluster, admin):
    """Cases needing one are skipped with the reason, the run is NOT CERTIFIED and exits 1, naming each
    behaviour it could not observe; a watcher sees no cluster-scoped object of the run."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.update(o for o in labelled(admin) if not o.startswith("Namespace/"))
            stop.wait(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = pytester.runpytest_subprocess("--k8s-sec", "--k8s-sec-cluster=existing",
                                               f"--kubeconfig={local_cluster.layout.admin_kubeconfig}",
                                               profile_with_local_images(local_cluster, pytester.path),
                                               "-p", "no:cacheprovider", "-rs")
    finally:
        stop.set()
        watcher.join()
    outcomes = result.parseoutcomes()
    assert result.ret == 1 and outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 10, outcomes
    assert outcomes["skipped"] >= 3, outcomes
    result.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: *",
                                 "SKIPPED*needs a cluster-scoped change*pass --k8s-sec-allow-cluster-changes*"])
    not_observed = {line.split()[1] for line in result.stdout.lines if line.startswith("k8s-sec:   ")}
    # every case of these needs a ClusterRole, a CSR or an admission policy; AUDIT-1 has no log here
    assert {"USER-1", "RBAC-3", "RBAC-4", "PSP-1", "PSP-2", "PSP-3", "PSP-4", "EXC-1", "EXC-2", "AUDIT-1"} <= not_observed
    assert "RBAC-1" not in not_observed and "NETPOL-2" not in not_observed
    assert seen == set()
    assert nothing_left(admin) == []


def test_partial_certification_is_accepted_only_when_asked(pytester, local_cluster):
    args = ["--k8s-sec", "--k8s-sec-cluster=existing", f"--kubeconfig={local_cluster.layout.admin_kubeconfig}",
            profile_with_local_images(local_cluster, pytester.path), "-p", "no:cacheprovider",
            "--k8s-sec-behaviours=RBAC-1,USER-1", "--k8s-sec-report=report"]
    strict = pytester.runpytest_subprocess(*args)
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: USER-1 (1 pass, 1 not observed)",
                                 "k8s-sec:   USER-1 not observed: *needs a cluster-scoped change*"])
    partial = pytester.runpytest_subprocess(*args, "--k8s-sec-accept-partial")
    assert partial.ret == 0
    partial.stdout.fnmatch_lines(["k8s-sec: PARTIAL (accepted with --k8s-sec-accept-partial): 1 required behaviours not observed"])
    markdown = (pytester.path / "report" / "k8s-sec-report.md").read_text().splitlines()
    assert markdown[2].startswith("**Verdict: PARTIAL**") and markdown[4].startswith("- USER-1: not observed:")


def test_two_runs_at_the_same_time_both_pass_and_leave_nothing(local_cluster, admin, tmp_path):
    env = {**os.environ, "K8SSEC_CACHE": str(local_cluster.cache)}
    runs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        runs.append(subprocess.Popen([sys.executable, "-m", "pytest", "--k8s-sec", "--k8s-sec-cluster=local",
                                      "-p", "no:cacheprovider", "-q"], cwd=tmp_path / name, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [proc.communicate(timeout=900)[0] for proc in runs]
    for proc, output in zip(runs, outputs):
        assert proc.returncode == 0, output[-4000:]
        assert "removed the leftovers" not in output, "a live run was taken for a killed one"
    assert nothing_left(admin) == []


def test_a_run_refuses_to_create_outside_its_own_namespaces(run, admin):
    """Removal deletes the run's namespaces; an object elsewhere would outlive the run, so none is made."""
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": run.name("stray"), "namespace": "default"}}
    with pytest.raises(ValueError, match="not this run's: it would outlive the run"):
        run.create(config_map)
    assert not client.CoreV1Api(admin).list_namespaced_config_map("default", label_selector=f"{RUN_LABEL}={run.id}").items
