"""Who each component of the local cluster is: its client certificate and kubeconfig, and the
read rights of those that have no bootstrap role of their own (kube-router, CoreDNS)."""

from __future__ import annotations

import urllib3
from cryptography.hazmat.primitives import serialization
from kubernetes import client
from kubernetes.client.rest import ApiException

from .. import rbac
from ..pki import CertificateAuthority, cert_pem, key_pem, kubeconfig, new_key, write_private
from ..waits import wait_for
from .layout import API_SERVICE_IP, NODE_IP, Layout

# Who each component is to the API server (CN, O).
IDENTITIES = {
    "admin": ("k8ssec-admin", ["system:masters"]),
    "kube-controller-manager": ("system:kube-controller-manager", []),
    "kube-scheduler": ("system:kube-scheduler", []),
    "kube-proxy": ("system:kube-proxy", []),
    "kube-router": ("system:kube-router", []),
    "coredns": ("system:k8ssec-coredns", []),
}
# What the components without a bootstrap role watch: resources by API group.
WATCHES = {
    "kube-router": {"": ["namespaces", "pods", "services", "nodes", "endpoints"], "networking.k8s.io": ["networkpolicies"],
                    "discovery.k8s.io": ["endpointslices"]},
    "coredns": {"": ["namespaces", "services"], "discovery.k8s.io": ["endpointslices"]},
}


def write_pki(lay: Layout) -> None:
    """A fresh CA, the serving certificates, the service-account key and a kubeconfig per component."""
    pki = lay.pki
    ca = CertificateAuthority.create("k8ssec-local-ca")
    write_private(pki / "ca.key", key_pem(ca.key))
    (pki / "ca.crt").write_bytes(cert_pem(ca.cert))
    serving = [NODE_IP, API_SERVICE_IP, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
               "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    ca.write_pair(pki, "apiserver", *ca.issue("kube-apiserver", server_names=serving, client=False))
    ca.write_pair(pki, "apiserver-kubelet-client", *ca.issue("kube-apiserver-kubelet-client", ["system:masters"]))
    ca.write_pair(pki, "kubelet", *ca.issue(lay.node_name, server_names=[NODE_IP, lay.node_name], client=False))
    sa = new_key()
    write_private(pki / "sa.key", key_pem(sa))
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    identities = dict(IDENTITIES, kubelet=(f"system:node:{lay.node_name}", ["system:nodes"]))
    for component, (cn, groups) in identities.items():
        key, cert = ca.issue(cn, groups)
        text = kubeconfig(lay.api_server, cert_pem(ca.cert), cn, cert_pem(cert), key_pem(key))
        write_private(lay.admin_kubeconfig if component == "admin" else lay.kubeconfig(component), text.encode())


def bootstrap_rbac(admin: client.ApiClient) -> None:
    """Read rights (and events) for the components in WATCHES, bound to their certificate's user."""
    api = client.RbacAuthorizationV1Api(admin)
    for component, watches in WATCHES.items():
        name, user = f"k8ssec:{component}", IDENTITIES[component][0]
        rules = [{"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
                 for group, resources in watches.items()]
        rules.append({"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]})
        objects = [(api.create_cluster_role, rbac.role(name, rules)),
                   (api.create_cluster_role_binding, rbac.binding(name, "ClusterRole", name, [rbac.user(user)]))]
        for create, manifest in objects:
            wait_for(f"the API server to accept {manifest['kind']} {name}", lambda: _create(create, manifest),
                     timeout=30, retry_on=(ApiException, urllib3.exceptions.HTTPError))


def _create(create, manifest: dict) -> bool:
    """Create an object; one that exists already (a restart) is fine."""
    try:
        create(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return True
