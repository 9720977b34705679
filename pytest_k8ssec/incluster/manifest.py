"""The objects an in-cluster run applies: its namespace, service account, rights, inputs and Job.

Every object carries LABEL, so `fetch` (or `remove`) finds them all. The service account's
rights are the suite's: without cluster changes, the namespaced rights the cases ask for
(granted cluster-wide, as RBAC cannot name the run's namespaces before they exist) and reads
of what the cases inspect; with them, cluster-admin, as the suite then writes admission
policies, approves certificates and grants roles it does not hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .image import REFERENCE, USER

LABEL = "k8ssec.io/incluster"
JOB_NAME = "k8s-sec"
INPUT = "/input"  # where the profile and claims files are mounted
DEADLINE = 3600   # seconds the Job may run
EDIT = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ = ["get", "list", "watch"]
RBAC_GROUP = "rbac.authorization.k8s.io"
# What a run without cluster changes does: its namespaces and everything in them, the questions it
# asks the authorizer, who it impersonates, and what it reads to name causes.
NAMESPACED_RULES = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": EDIT},
    {"apiGroups": [""], "resources": ["pods", "pods/exec", "pods/portforward", "pods/log", "pods/ephemeralcontainers", "services",
                                      "serviceaccounts", "configmaps", "replicationcontrollers", "events"], "verbs": EDIT},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "daemonsets"], "verbs": EDIT},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": EDIT},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": EDIT},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "rolebindings"], "verbs": [*EDIT, "escalate", "bind"]},
    {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles", "clusterrolebindings"], "verbs": READ},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews", "localsubjectaccessreviews",
                                                          "selfsubjectaccessreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["nodes", "endpoints"], "verbs": READ},
    {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
    {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingadmissionpolicies",
                                                                  "validatingadmissionpolicybindings",
                                                                  "validatingwebhookconfigurations",
                                                                  "mutatingwebhookconfigurations"], "verbs": READ},
    {"apiGroups": ["policy.networking.k8s.io", "crd.projectcalico.org", "projectcalico.org"], "resources": ["*"], "verbs": READ},
]


@dataclass(frozen=True)
class Names:
    """One in-cluster run's names: `name` labels every object, and names its namespace and cluster-wide RBAC."""

    name: str = "k8s-sec"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", self.name):
            raise ValueError(f"--name must be a DNS label of at most 42 characters, not {self.name!r}")

    @property
    def namespace(self) -> str:
        return f"{self.name}-incluster"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.name, "app.kubernetes.io/managed-by": "pytest-k8ssec"}


def objects(names: Names, *, image: str = REFERENCE, pull_policy: str = "IfNotPresent", profile: str | None = None,
            claims: str | None = None, pod_files: dict[str, str] | None = None, allow_cluster_changes: bool = False,
            pytest_args: list[str] = ()) -> list[dict[str, Any]]:
    """The manifest, in the order to apply it. `profile` and `claims` are the files' texts, `pod_files` the pod
    manifests the claims file names (by name, beside it)."""
    def meta(name: str, namespaced: bool = True) -> dict[str, Any]:
        return {"name": name, "labels": names.labels, **({"namespace": names.namespace} if namespaced else {})}

    files = {**(pod_files or {}), **{k: v for k, v in (("profile.yaml", profile), ("claims.yaml", claims)) if v is not None}}
    args = [*([f"--k8s-sec-profile={INPUT}/profile.yaml"] if profile is not None else []),
            *([f"--k8s-sec-claims={INPUT}/claims.yaml"] if claims is not None else []),
            *(["--k8s-sec-allow-cluster-changes"] if allow_cluster_changes else []), *pytest_args]
    role = (None if allow_cluster_changes else
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(names.namespace, False),
             "rules": NAMESPACED_RULES})
    uid, gid = (int(x) for x in USER.split(":"))
    container = {
        "name": "suite", "image": image, "imagePullPolicy": pull_policy, "args": ["--", *args],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *([{"name": "input", "mountPath": INPUT}] if files else [])],
    }
    pod = {
        "metadata": {"labels": names.labels},
        "spec": {"serviceAccountName": "runner", "restartPolicy": "Never",
                 "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [container],
                 "volumes": [{"name": "tmp", "emptyDir": {}},
                             *([{"name": "input", "configMap": {"name": "input"}}] if files else [])]},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names.namespace, "labels": {
            **names.labels, "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("runner")},
        *([role] if role else []),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(names.namespace, False),
         "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role["metadata"]["name"] if role else "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": names.namespace}]},
        *([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("input"), "data": files}] if files else []),
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(JOB_NAME),
         "spec": {"backoffLimit": 0, "activeDeadlineSeconds": DEADLINE, "template": pod}},
    ]
