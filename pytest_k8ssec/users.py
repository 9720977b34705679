"""Test users from client certificates signed through the certificates API (USER-1).

The key and CSR are made with `cryptography`; the key and the user's kubeconfig live in a
private temporary directory (0700, files 0600) that is deleted when the run ends.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kubernetes import client

from .kube import api_client
from .pki import key_pem, kubeconfig, new_key, subject, write_private
from .run import Run
from .waits import wait_for

SIGNER = "kubernetes.io/kube-apiserver-client"


@dataclass
class User:
    """The test user: its name and groups as requested, a kubeconfig to act as it, and where it came from."""

    name: str
    groups: list[str]
    kubeconfig: Path
    origin: str = "certificates.k8s.io/v1 CSR, signer " + SIGNER

    def api(self) -> client.ApiClient:
        return api_client(str(self.kubeconfig))


class KeyStore:
    """A private directory for user keys and kubeconfigs, removed on close."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="k8ssec-users-"))  # mkdtemp makes it 0700

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def create_user(run: Run, admin: client.ApiClient, keys: KeyStore, name: str, groups: list[str], csr_base: str) -> User:
    """Key + CSR (CN=name, O=groups) -> certificates.k8s.io/v1 CSR -> approve -> kubeconfig."""
    key = new_key()
    request = (x509.CertificateSigningRequestBuilder().subject_name(subject(name, groups))
               .sign(key, hashes.SHA256()))
    csr_name = run.name(csr_base)
    run.create({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": csr_name},
        "spec": {
            "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": SIGNER,
            "usages": ["client auth"],
            "expirationSeconds": 3600,
        },
    })
    certs = client.CertificatesV1Api(admin)
    csr = certs.read_certificate_signing_request(csr_name)
    csr.status.conditions = [client.V1CertificateSigningRequestCondition(
        type="Approved", status="True", reason="K8sSecTest", message="approved by pytest-k8ssec for a test user")]
    certs.replace_certificate_signing_request_approval(csr_name, csr)
    signed = wait_for(f"CSR {csr_name} to be signed by {SIGNER}",
                      lambda: certs.read_certificate_signing_request(csr_name).status.certificate,
                      timeout=30, interval=0.2)
    cert_bytes = base64.b64decode(signed)
    key_file = keys.path / f"{csr_base}.key"
    write_private(key_file, key_pem(key))
    kubeconfig = keys.path / f"{csr_base}.kubeconfig"
    write_private(kubeconfig, user_kubeconfig(admin, name, cert_bytes, key_pem(key)).encode())
    return User(name, list(groups), kubeconfig)


def user_kubeconfig(admin: client.ApiClient, user: str, cert: bytes, key: bytes) -> str:
    """The admin's cluster entry (server and CA) with the user's credentials."""
    cfg = admin.configuration
    ca = Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert else b""
    return kubeconfig(cfg.host, ca, user, cert, key, cluster="k8ssec-under-test")


def whoami(api: client.ApiClient) -> tuple[str, list[str]]:
    """The user name and groups the API server sees (SelfSubjectReview, 1.28+)."""
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
    info = review.status.user_info
    return info.username, sorted(info.groups or [])
