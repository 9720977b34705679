"""The rights a run asks its identity for: the few every run needs at start-up, the others where a case needs them.

A CI identity that may create namespaces and work inside them, and nothing cluster-wide, can
still observe the namespaced behaviours: a case whose right is missing is skipped (not
observed, never pass) with one line naming the right that would enable it. Each right is asked
once per run (SelfSubjectAccessReview) and the answer kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pytest
from kubernetes import client

from .run import control_namespace

RUN_NAMESPACES = "the run's namespaces"
# A run's namespaces do not exist at start-up: their rights are asked in one named like them.
SAMPLE_RUN_NAMESPACE = control_namespace("rights")


@dataclass(frozen=True)
class Right:
    """One thing the identity may do: a verb on a resource, cluster-wide, in a named namespace or in the run's."""

    verb: str
    resource: str  # with its subresource: pods/exec
    group: str = ""
    namespace: str | None = None  # None: cluster-wide
    name: str | None = None

    def __str__(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        scope = "cluster-wide" if self.namespace is None else (
            "in the run's namespaces" if self.namespace == RUN_NAMESPACES else f"in namespace {self.namespace}")
        return f"{self.verb} {resource}{' ' + self.name if self.name else ''} ({scope})"

    def attributes(self) -> client.V1ResourceAttributes:
        resource, _, sub = self.resource.partition("/")
        namespace = SAMPLE_RUN_NAMESPACE if self.namespace == RUN_NAMESPACES else self.namespace
        return client.V1ResourceAttributes(verb=self.verb, group=self.group, resource=resource, subresource=sub or None,
                                           namespace=namespace, name=self.name)


def in_run(verb: str, resource: str, group: str = "") -> Right:
    return Right(verb, resource, group, RUN_NAMESPACES)


# What the run itself does (run.py, cleanup.py): its namespaces, its heartbeat Lease, removal by label.
RUN_RIGHTS = (
    Right("create", "namespaces"), Right("delete", "namespaces"), Right("list", "namespaces"), Right("get", "namespaces"),
    in_run("get", "serviceaccounts"), in_run("create", "leases", "coordination.k8s.io"),
    in_run("patch", "leases", "coordination.k8s.io"), in_run("get", "leases", "coordination.k8s.io"),
    in_run("deletecollection", "pods"),
)
# Asked at start-up where cluster-scoped changes are allowed: the suite as a whole.
CLUSTER_CHANGE_RIGHTS = RUN_RIGHTS + (
    Right("create", "clusterroles", "rbac.authorization.k8s.io"),
    Right("create", "rolebindings", "rbac.authorization.k8s.io"),
    Right("create", "certificatesigningrequests", "certificates.k8s.io"),
    Right("update", "certificatesigningrequests/approval", "certificates.k8s.io"),
    Right("create", "subjectaccessreviews", "authorization.k8s.io"),
    Right("impersonate", "users"),
    Right("create", "pods"),
    Right("create", "pods/exec"),
)

SUBJECT_ACCESS_REVIEWS = Right("create", "subjectaccessreviews", "authorization.k8s.io")
IMPERSONATE = (Right("impersonate", "users"), Right("impersonate", "groups"))
IMPERSONATE_SERVICE_ACCOUNTS = in_run("impersonate", "serviceaccounts")
LIST_NAMESPACES = Right("list", "namespaces")
LIST_NODES = Right("list", "nodes")
GET_NODES = Right("get", "nodes")
NODES_PROXY = Right("get", "nodes/proxy")  # the kubelet through the API server: NODE-1's positive control
PATCH_NAMESPACES = Right("patch", "namespaces")
EXEC = in_run("create", "pods/exec")
PORT_FORWARD = in_run("create", "pods/portforward")  # NODE-1's HTTPS through the probe pod's relay
EVENTS = in_run("list", "events")
CERTIFICATE_USER = (Right("create", "certificatesigningrequests", "certificates.k8s.io"),
                    Right("update", "certificatesigningrequests/approval", "certificates.k8s.io"),
                    Right("approve", "signers", "certificates.k8s.io", name="kubernetes.io/kube-apiserver-client"))
BINDINGS_SCAN = (Right("list", "clusterroles", "rbac.authorization.k8s.io"),
                 Right("list", "clusterrolebindings", "rbac.authorization.k8s.io"),
                 Right("list", "roles", "rbac.authorization.k8s.io"), Right("list", "rolebindings", "rbac.authorization.k8s.io"),
                 Right("list", "serviceaccounts"))
KUBE_SYSTEM_WORKLOADS = (Right("list", "daemonsets", "apps", "kube-system"), Right("list", "deployments", "apps", "kube-system"),
                         Right("list", "pods", namespace="kube-system"), Right("list", "events", namespace="kube-system"))


def tenancy(role_kind: str) -> tuple[Right, ...]:
    """Granting the developer role in the run's namespaces, and asking the authorizer when the grant has landed.

    The role grants what the identity need not hold itself (verbs `*`), so it must be allowed
    to `escalate` and `bind` the kind of role it makes.
    """
    rbac = "rbac.authorization.k8s.io"
    roles = [Right(verb, "clusterroles", rbac) if role_kind == "ClusterRole" else in_run(verb, "roles", rbac)
             for verb in ("create", "escalate", "bind")]
    return (*roles, in_run("create", "rolebindings", rbac), in_run("create", "localsubjectaccessreviews", "authorization.k8s.io"))


class Rights:
    """The identity's answers, asked once per run: start-up's check and every case's share them."""

    def __init__(self, api: client.ApiClient, kubeconfig: Path | str) -> None:
        self.api, self.kubeconfig = api, kubeconfig
        self._answers: dict[Right, bool] = {}

    def allowed(self, right: Right) -> bool:
        if right not in self._answers:
            review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=right.attributes()))
            status = client.AuthorizationV1Api(self.api).create_self_subject_access_review(review).status
            self._answers[right] = bool(status.allowed)
        return self._answers[right]

    def missing(self, rights: Iterable[Right]) -> list[Right]:
        return [r for r in dict.fromkeys(rights) if not self.allowed(r)]

    def require(self, *rights: Right) -> None:
        """Skip the case (not observed) with one line naming each missing right, unless the identity has them all."""
        missing = self.missing(rights)
        if missing:
            pytest.skip(needs_line(missing, self.kubeconfig))


def needs_line(missing: list[Right], kubeconfig: Path | str) -> str:
    them = "it" if len(missing) == 1 else "them"
    return (f"needs the right{'s' if len(missing) > 1 else ''} to {' and '.join(map(str, missing))}: "
            f"grant {them} to the identity in {kubeconfig}, or use an admin kubeconfig")
