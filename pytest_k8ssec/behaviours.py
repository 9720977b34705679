"""The catalogue of behaviour IDs from BEHAVIOURS.md, used to mark and select cases."""

from __future__ import annotations

from .errors import K8sSecError

BEHAVIOURS: dict[str, str] = {
    "RBAC-1": "developer ClusterRole bound to a group in the tenant namespace",
    "USER-1": "user from a client certificate signed through the certificates API",
    "RBAC-2": "can-i answers for the certificate user",
    "RBAC-3": "role update takes effect without restart",
    "RBAC-4": "SubjectAccessReview and impersonation for any user and group",
    "RBAC-5": "dangling role and subject references are found",
    "AUDIT-1": "the API server records what the audit policy says, and nothing else",
    "NETPOL-1": "no policy: every client reaches the server",
    "NETPOL-2": "default-deny blocks every client",
    "NETPOL-3": "podSelector peer admits only its own namespace",
    "NETPOL-4": "namespaceSelector peer admits the labelled namespace",
    "NETPOL-5": "full reachability matrix against a truth table",
    "PRIV-1": "privileged hostNetwork pod rejected on a hardened namespace",
    "PRIV-2": "control-plane privileged pods keep running under enforcement",
    "PSP-1": "non-root pod rejected without an authorized policy",
    "PSP-2": "restricted policy admits the non-root pod, not a privileged one",
    "PSP-3": "controller cannot create pods while its service account is not authorized",
    "PSP-4": "controller creates pods once its service accounts are authorized",
    "PSP-5": "image running as root under runAsNonRoot never starts",
    "EXC-1": "permissive policy usable by one service account only",
    "EXC-2": "can-i use reports the exception for that account and no other",
    "VERIFY-1": "what a restricted container really runs with",
    "VERSION-1": "the mechanism is picked from the server version",
}


def parse_selection(text: str | None) -> set[str] | None:
    """Parse a comma-separated list of behaviour IDs; None means all."""
    if not text:
        return None
    chosen = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(chosen - BEHAVIOURS.keys())
    if unknown:
        raise K8sSecError(
            f"unknown behaviour ID {', '.join(unknown)} in --k8s-sec-behaviours; "
            f"known IDs: {', '.join(BEHAVIOURS)}"
        )
    return chosen
