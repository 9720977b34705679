"""Bad input: one clear line that says what to do, a non-zero exit, and nothing left on the cluster.

Every case runs the installed plugin in a subprocess (pytester) against the real local cluster
or with a deliberately broken argument, then lists what carries the run label.
"""

from __future__ import annotations

import datetime

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from pytest_k8ssec.pki import CertificateAuthority, cert_pem, key_pem, kubeconfig, new_key, subject
from pytest_k8ssec.profile import default_profile_path
from pytest_k8ssec.users import KeyStore, create_user


def existing(path) -> tuple[str, str]:
    return "--k8s-sec-cluster=existing", f"--kubeconfig={path}"


def client_kubeconfig(local_cluster, cert, key, tmp_path) -> str:
    pki = local_cluster.layout.pki
    path = tmp_path / "user.kubeconfig"
    path.write_text(kubeconfig(local_cluster.layout.api_server, (pki / "ca.crt").read_bytes(), "someone",
                               cert_pem(cert), key_pem(key)))
    return str(path)


def test_missing_kubeconfig(k8s_sec, tmp_path):
    line = k8s_sec(*existing(tmp_path / "nope"))
    assert "does not exist" in line and "--kubeconfig" in line


def test_kubeconfig_that_is_no_kubeconfig(k8s_sec, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_text("just: [some, yaml]\n")
    assert "is not a kubeconfig" in k8s_sec(*existing(garbage))


def test_kubeconfig_that_is_not_yaml(k8s_sec, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_text("{{{ not yaml")
    assert "not valid YAML" in k8s_sec(*existing(garbage))


def test_unknown_context(k8s_sec, local_cluster):
    line = k8s_sec(*existing(local_cluster.layout.admin_kubeconfig), "--context=nope")
    assert "context 'nope' is not in" in line and "it has:" in line


def test_unreachable_server(k8s_sec, local_cluster, tmp_path):
    data = yaml.safe_load(local_cluster.layout.admin_kubeconfig.read_text())
    data["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "unreachable"
    path.write_text(yaml.safe_dump(data))
    line = k8s_sec(*existing(path))
    assert "cannot reach the API server at https://127.0.0.1:1" in line and "is the cluster running" in line


def test_certificate_from_an_unknown_ca(k8s_sec, local_cluster, tmp_path):
    key, cert = CertificateAuthority.create("not-the-cluster-ca").issue("mallory", ["system:masters"])
    line = k8s_sec(*existing(client_kubeconfig(local_cluster, cert, key, tmp_path)))
    assert "rejected the credentials" in line and "HTTP 401" in line


def test_expired_certificate(k8s_sec, local_cluster, tmp_path):
    pki = local_cluster.layout.pki
    ca = CertificateAuthority.load(pki / "ca.key", pki / "ca.crt")
    key, now = new_key(), datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject("expired-admin", ["system:masters"]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(now - datetime.timedelta(days=1))
            .sign(ca.key, hashes.SHA256()))
    line = k8s_sec(*existing(client_kubeconfig(local_cluster, cert, key, tmp_path)))
    assert "rejected the credentials" in line and "expired or wrong" in line


def test_identity_without_rights_is_told_which(k8s_sec, run, admin):
    keys = KeyStore()
    try:
        user = create_user(run, admin, keys, "nobody-special", ["nothing"], "norights")
        line = k8s_sec(*existing(user.kubeconfig))
    finally:
        keys.close()
    assert "lacks rights every run needs: create namespaces (cluster-wide)," in line and "use an admin kubeconfig" in line


def test_malformed_profile_names_file_key_and_expectation(k8s_sec, tmp_path):
    data = yaml.safe_load(default_profile_path().read_text())
    data["networkpolicy"]["enforced"] = "maybe"
    profile = tmp_path / "bad.yaml"
    profile.write_text(yaml.safe_dump(data))
    line = k8s_sec(f"--k8s-sec-profile={profile}")
    assert str(profile) in line and "networkpolicy.enforced" in line and "must be" in line and "maybe" in line


def test_unknown_behaviour_id(k8s_sec):
    line = k8s_sec("--k8s-sec-behaviours=RBAC-1,NETPOL-9")
    assert "unknown behaviour ID NETPOL-9" in line and "known IDs: RBAC-1" in line


def test_report_directory_not_writable(k8s_sec, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert "is not writable" in k8s_sec(f"--k8s-sec-report={blocker}/report")


def test_conflicting_options(k8s_sec, local_cluster):
    line = k8s_sec("--k8s-sec-cluster=local", f"--kubeconfig={local_cluster.layout.admin_kubeconfig}")
    assert "creates its own cluster: drop --kubeconfig" in line


def test_malformed_waivers_file_names_the_entry(k8s_sec, tmp_path):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {id: RBAC-2, reason: r, owner: o, expires: 2027-01-01}\n  - {id: NETPOL-2, reason: r}\n")
    line = k8s_sec("--k8s-sec-cluster=local", f"--k8s-sec-waivers={waivers}")
    assert f"waivers file {waivers}: entry 2 (NETPOL-2): owner: is missing or empty" in line


def test_baseline_that_is_no_report_says_what_to_pass(k8s_sec, tmp_path):
    baseline = tmp_path / "junit.xml"
    baseline.write_text("<testsuites/>")
    line = k8s_sec("--k8s-sec-cluster=local", f"--k8s-sec-baseline={baseline}")
    assert "is not JSON: pass the k8s-sec-report.json of an earlier run" in line and str(baseline) in line
