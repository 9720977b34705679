"""Admission per server version (VERSION-1): Pod Security Admission, and service-account gating.

PodSecurityPolicy is gone from 1.25. Its heart, "a pod is admitted only if its service account
may `use` a policy that allows it", is rebuilt with a ValidatingAdmissionPolicy whose CEL asks
RBAC (`authorizer.serviceAccount(...).check('use')`). The same RBAC grant, `use` on a
podsecuritypolicies name in group policy, therefore means the same thing on PSP and VAP clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from .kube import get_json

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
GATE_LABEL = "k8ssec.io/sa-gate"
REJECTED_MESSAGE = "unable to validate against any pod security policy"

ALLOWED_VOLUMES = ["configMap", "emptyDir", "projected", "secret", "downwardAPI", "persistentVolumeClaim"]


@dataclass(frozen=True)
class Mechanism:
    """What this cluster enforces pod security with, as read from its version and discovery."""

    minor: int
    psp: bool
    psa: bool
    vap: bool

    @property
    def name(self) -> str:
        if self.psp:
            return "PodSecurityPolicy"
        return "Pod Security Admission + ValidatingAdmissionPolicy" if self.vap else "Pod Security Admission"

    @property
    def policy_api_group(self) -> str:
        """The group RBAC names for `use` of a policy: extensions before 1.16, policy since."""
        return "extensions" if self.minor < 16 else "policy"


def detect(api: client.ApiClient, minor: int) -> Mechanism:
    """Pick the mechanism from the server version and API discovery, never from the version alone."""
    def served(path: str, resource: str) -> bool:
        try:
            return any(r["name"] == resource for r in get_json(api, path).get("resources", []))
        except Exception:
            return False

    return Mechanism(
        minor=minor,
        psp=minor < 25 and served("/apis/policy/v1beta1", "podsecuritypolicies"),
        psa=minor >= 23,
        vap=served("/apis/admissionregistration.k8s.io/v1", "validatingadmissionpolicies"),
    )


def psa_labels(level: str) -> dict[str, str]:
    return {PSA_ENFORCE: level, f"{PSA_ENFORCE}-version": "latest"}


# CEL: the pod satisfies the seeds' `restricted` policy.
_ALL_CONTAINERS = "((has(object.spec.initContainers) ? object.spec.initContainers : []) + object.spec.containers)"
RESTRICTED_CEL = " && ".join(f"({clause})" for clause in [
    "!(has(object.spec.hostNetwork) && object.spec.hostNetwork)",
    "!(has(object.spec.hostPID) && object.spec.hostPID)",
    "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
    f"{_ALL_CONTAINERS}.all(c, !(has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged))",
    f"{_ALL_CONTAINERS}.all(c, has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false)",
    f"{_ALL_CONTAINERS}.all(c, has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && c.securityContext.capabilities.drop.exists(d, d == 'ALL'))",
    f"{_ALL_CONTAINERS}.all(c, (has(c.securityContext) && has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot) || (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot))",
    "!has(object.spec.volumes) || object.spec.volumes.all(v, " + " || ".join(f"has(v.{t})" for t in ALLOWED_VOLUMES) + ")",
    "!(has(object.spec.securityContext) && has(object.spec.securityContext.fsGroup)) || (object.spec.securityContext.fsGroup >= 1 && object.spec.securityContext.fsGroup <= 65535)",
    "!(has(object.spec.securityContext) && has(object.spec.securityContext.supplementalGroups)) || object.spec.securityContext.supplementalGroups.all(g, g >= 1 && g <= 65535)",
])


def _may_use(policy: str) -> str:
    return (f"authorizer.serviceAccount(request.namespace, variables.sa).group('policy')"
            f".resource('podsecuritypolicies').namespace(request.namespace).name('{policy}').check('use').allowed()")


def gating_policy(name: str, gate: str, restricted: str, permissive: str) -> dict[str, Any]:
    """A VAP admitting a pod if its service account may `use` `permissive`, or `restricted` and it complies.

    Only namespaces labelled GATE_LABEL=gate are matched, so a run never affects anything but its own.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {GATE_LABEL: gate}},
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            },
            "variables": [
                {"name": "sa", "expression": "has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' "
                                             "? object.spec.serviceAccountName : 'default'"},
                {"name": "permissive", "expression": _may_use(permissive)},
                {"name": "restricted", "expression": _may_use(restricted)},
                {"name": "complies", "expression": RESTRICTED_CEL},
            ],
            "validations": [{
                "expression": "variables.permissive || (variables.restricted && variables.complies)",
                # Kept to plain concatenation: a messageExpression that fails to evaluate is silently
                # replaced by the failed expression's text.
                "messageExpression": f"'{REJECTED_MESSAGE}: service account ' + variables.sa + ' may use no policy that allows this pod'",
                "reason": "Forbidden",
            }],
        },
    }


def gating_binding(name: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy, "validationActions": ["Deny"]},
    }


def use_role(name: str, namespace: str, policy: str) -> dict[str, Any]:
    """A Role granting `use` of one named policy, the same grant PSP clusters understood."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": ["policy"], "resources": ["podsecuritypolicies"], "verbs": ["use"], "resourceNames": [policy]}]}


def role_binding(name: str, namespace: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}, "subjects": subjects}


def group(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


def service_account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
