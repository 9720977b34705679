"""The local provider's bad input: one clear line that says what to do, and nothing left running.

Each case runs `python -m pytest_k8ssec.local` as a user would, on a machine made to lack
one thing (through PATH or an empty cache; nothing is uninstalled). A port held by another
program is in test_zz_lifecycle, since it needs the cluster stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_k8ssec.local import hostnet

SYSTEM_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"  # no /usr/local/go/bin


def local(*args: str, path: str, cache) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "K8SSEC_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "pytest_k8ssec.local", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


def test_go_missing_says_to_install_go(tmp_path):
    line = one_error_line(local("build", path=SYSTEM_PATH, cache=tmp_path))
    assert "needs Go: install Go 1.26 or newer and put `go` on PATH" in line
    assert not (tmp_path / "bin").exists() or not any((tmp_path / "bin").rglob("kube-apiserver"))


def test_missing_debian_packages_are_named_with_the_apt_command(tmp_path, local_cluster):
    # Without the sbin directories iptables, ipset and conntrack cannot be found, as if not installed.
    line = one_error_line(local("up", path="/usr/bin:/bin:/usr/local/go/bin", cache=tmp_path))
    assert "the local cluster needs Debian packages that are missing: apt-get install" in line
    assert {"iptables", "ipset", "conntrack"} <= set(line.split("apt-get install ")[1].split())
    assert hostnet.processes_of(tmp_path) == []


def test_kubernetes_version_that_does_not_exist(tmp_path):
    line = one_error_line(local("build", "--k8s-version", "v1.99.0", path=os.environ["PATH"], cache=tmp_path))
    assert "Kubernetes v1.99.0 is not available from the Go module proxy" in line
    assert "go list -m -versions k8s.io/kubernetes" in line


@pytest.mark.parametrize("version, says", [("1.37", "must look like v1.Y.Z"), ("v1.29.0", "older than v1.30")])
def test_unsupported_kubernetes_version(tmp_path, version, says):
    line = one_error_line(local("build", "--k8s-version", version, path=os.environ["PATH"], cache=tmp_path))
    assert says in line
