"""A CI identity with least privilege: it may create namespaces and work inside them, nothing cluster-scoped.

Start-up asks it only for what every run needs; the namespaced behaviours are observed, and
each behaviour it cannot observe is named with the right (or the consent) that would enable it.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Iterator

import pytest

from pytest_k8ssec import rbac
from pytest_k8ssec.access import Question, await_grant
from pytest_k8ssec.pki import CertificateAuthority, cert_pem, key_pem, kubeconfig, write_private
from pytest_k8ssec.rights import SAMPLE_RUN_NAMESPACE
from pytest_k8ssec.run import live_runs, stale_runs
from pytest_k8ssec.users import KeyStore

from test_isolation import profile_with_local_images

USER = "k8ssec-ci-least-privilege"
# Namespaces it makes and removes; roles it grants there hold what it need not (the developers' `*`).
NAMESPACE_OWNER = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "delete", "list", "get"]},
                   {"apiGroups": [rbac.GROUP], "resources": ["roles"], "verbs": ["escalate", "bind"]}]
OBSERVED = {"RBAC-1", "NETPOL-1", "NETPOL-2", "NETPOL-3", "VERIFY-1", "PSP-5", "PRIV-2", "VERSION-1"}
# behaviour -> what its not-observed line must name
NAMED = {
    "RBAC-2": ["impersonate users (cluster-wide) and impersonate groups (cluster-wide)",
               "create subjectaccessreviews.authorization.k8s.io (cluster-wide)"],
    "RBAC-4": ["create subjectaccessreviews.authorization.k8s.io (cluster-wide)"],
    "RBAC-5": ["list clusterroles.rbac.authorization.k8s.io (cluster-wide)",
               "list clusterrolebindings.rbac.authorization.k8s.io (cluster-wide)"],
    "PRIV-1": ["get nodes (cluster-wide)", "impersonate users (cluster-wide)"],
    "NETPOL-4": ["patch namespaces (cluster-wide)"],
    "NETPOL-5": ["list nodes (cluster-wide)"],
    "USER-1": ["needs a cluster-scoped change"],
    "PSP-1": ["needs a cluster-scoped change"],
}


@pytest.fixture
def least_privileged(local_cluster, run, admin) -> Iterator[Path]:
    """A client-certificate user signed by the cluster's CA, bound to NAMESPACE_OWNER and `admin` everywhere.

    Its key is only inline in a kubeconfig (0600) in a private temporary directory (0700), deleted after.
    """
    owner = run.name("namespace-owner")
    run.create(rbac.role(owner, NAMESPACE_OWNER))
    run.create(rbac.binding(owner, "ClusterRole", owner, [rbac.user(USER)]))
    run.create(rbac.binding(run.name("namespace-admin"), "ClusterRole", "admin", [rbac.user(USER)]))
    for q in (Question("create", "", "namespaces"),
              Question("create", "coordination.k8s.io", "leases", namespace=SAMPLE_RUN_NAMESPACE)):
        await_grant(admin, q, USER, [], f"{USER}'s binding")
    pki = local_cluster.layout.pki
    ca = CertificateAuthority.load(pki / "ca.key", pki / "ca.crt")
    key, cert = ca.issue(USER)
    keys = KeyStore()
    path = keys.path / "least-privilege.kubeconfig"
    try:
        text = kubeconfig(local_cluster.layout.api_server, cert_pem(ca.cert), USER, cert_pem(cert), key_pem(key))
        write_private(path, text.encode())
        assert stat.S_IMODE(keys.path.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
        yield path
    finally:
        keys.close()
    assert not keys.path.exists()


def test_least_privileged_identity_observes_the_namespaced_behaviours(pytester, local_cluster, admin, least_privileged):
    earlier = {*live_runs(admin), *stale_runs(admin)}  # other runs on the shared cluster
    result = pytester.runpytest_subprocess("--k8s-sec", "--k8s-sec-cluster=existing", f"--kubeconfig={least_privileged}",
                                           profile_with_local_images(local_cluster, pytester.path), "-p", "no:cacheprovider",
                                           "-rs")
    outcomes = result.parseoutcomes()
    assert result.ret == 1 and not outcomes.get("failed") and not outcomes.get("errors"), result.stdout.str()[-6000:]
    result.stdout.fnmatch_lines(["k8s-sec: NOT CERTIFIED: *"])
    short = {line.split()[1]: line for line in result.stdout.lines if line.startswith("k8s-sec:   ")}
    assert not OBSERVED & short.keys(), {b: short[b] for b in OBSERVED & short.keys()}
    for behaviour, names in NAMED.items():
        for name in names:
            assert name in short.get(behaviour, ""), f"{behaviour}: {name!r} not in {short.get(behaviour)!r}"
    for line in short.values():  # each skip says what would enable it
        reasons = line.split(" skipped: ")[1:]
        assert reasons and all("needs the right" in r or "needs a cluster-scoped change" in r or "audit" in r
                               for r in reasons), line
    assert "or use an admin kubeconfig" in short["NETPOL-4"] and str(least_privileged) in short["NETPOL-4"]
    # the suite's run has ended: nothing of it is left that is not being deleted
    assert set(stale_runs(admin)) <= earlier


def test_with_cluster_changes_allowed_start_up_asks_for_everything(pytester, local_cluster, least_privileged):
    """Opting in to cluster-scoped changes keeps the whole list at start-up: one line, nothing run."""
    result = pytester.runpytest_subprocess("--k8s-sec", "--k8s-sec-cluster=existing", f"--kubeconfig={least_privileged}",
                                           "--k8s-sec-allow-cluster-changes", "-p", "no:cacheprovider")
    lines = [line for line in result.outlines + result.errlines if "k8s-sec:" in line]
    assert result.ret == 3 and len(lines) == 1, "\n".join(result.outlines + result.errlines)
    assert "lacks rights the suite needs: create clusterroles.rbac.authorization.k8s.io (cluster-wide)," in lines[0]
    assert "create subjectaccessreviews.authorization.k8s.io (cluster-wide)" in lines[0]
    assert "create namespaces" not in lines[0] and "; grant them, or use an admin kubeconfig" in lines[0]
