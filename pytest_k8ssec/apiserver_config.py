"""API server configuration files shared by the providers that create clusters (local, kind)."""

from __future__ import annotations

from typing import Any

from .profile import Profile

# Namespaces whose pods Pod Security admission leaves alone, so the control plane keeps working.
EXEMPT_NAMESPACES = ["kube-system"]


def audit_policy(profile: Profile) -> dict[str, Any]:
    """The audit policy (audit.k8s.io/v1) the API server runs with: the profile's."""
    return profile.audit_policy


def admission_configuration(default_level: str = "baseline") -> dict[str, Any]:
    """Cluster-wide Pod Security defaults: baseline (or `default_level`) enforced everywhere but the exempt namespaces.

    Tenant namespaces made by the suite set their own level with namespace labels; the default
    only matters for namespaces that set none, as the seeds' lab made PSP apply everywhere.
    """
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": {
                        "enforce": default_level,
                        "enforce-version": "latest",
                        "audit": "restricted",
                        "audit-version": "latest",
                        "warn": "restricted",
                        "warn-version": "latest",
                    },
                    "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": EXEMPT_NAMESPACES},
                },
            }
        ],
    }


# kube-apiserver flags both providers set, beyond what each needs to run at all.
def hardening_flags(audit_policy_file: str, audit_log_file: str, admission_config_file: str) -> dict[str, str]:
    return {
        "authorization-mode": "Node,RBAC",
        "enable-admission-plugins": "NodeRestriction,PodSecurity,ValidatingAdmissionPolicy",
        "admission-control-config-file": admission_config_file,
        "audit-policy-file": audit_policy_file,
        "audit-log-path": audit_log_file,
        "audit-log-format": "json",
        "audit-log-mode": "blocking",
        "audit-log-maxbackup": "2",
        "audit-log-maxsize": "100",
    }
