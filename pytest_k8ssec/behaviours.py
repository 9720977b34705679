"""The catalogue of behaviour IDs from BEHAVIOURS.md, used to mark and select cases.

Each behaviour is one of two kinds of claim, and the reports keep them apart:

- *posture*: the cluster as its owner configured it. The verdict turns on a choice the owner
  made (grants, admission configuration, the NetworkPolicy enforcer, the audit policy, the
  signer), and a pass says how the cluster treats its own users and workloads.
- *capability*: what the cluster did with the suite's own objects (its admission gate, its
  bindings, its pods' security contexts). A pass shows the cluster *can* do it, not that
  anything of the owner's is configured so; such claims credit no posture control.
"""

from __future__ import annotations

from .errors import K8sSecError

CAPABILITY, POSTURE, USER = "capability", "posture", "user"
CLAIM_KINDS: dict[str, str] = {
    POSTURE: "the cluster as configured (the verdict turns on its owner's choices)",
    CAPABILITY: "shown with the suite's own objects (the cluster can do it; no posture control is credited)",
    USER: "the user's own claim about their own objects (a claims file, or their own tests); no control is credited",
}

# ID: (title, kind of claim). The one place both are decided.
CATALOGUE: dict[str, tuple[str, str]] = {
    # The role and binding are the suite's, but "nowhere else" is decided by the cluster's
    # authorizer chain and every grant its owner made (cluster-admin bound to
    # system:authenticated fails it): posture of the cluster's RBAC, as NETPOL is of its enforcer.
    "RBAC-1": ("developer ClusterRole bound to a group in the tenant namespace", POSTURE),
    # The suite's CSR, but the cluster's own signer and authenticator (configured or not by
    # the owner) decide who the certificate is: posture.
    "USER-1": ("user from a client certificate signed through the certificates API", POSTURE),
    "RBAC-2": ("can-i answers for the certificate user", POSTURE),
    # Patches the suite's own role; every RBAC authorizer applies it live: capability.
    "RBAC-3": ("role update takes effect without restart", CAPABILITY),
    # The answers follow the suite's own ClusterRoleBinding, and the three ways of asking agree:
    # a property of the API, not of the owner's configuration.
    "RBAC-4": ("SubjectAccessReview and impersonation for any user and group", CAPABILITY),
    # The suite's own dangling binding is accepted and grants nothing; the cluster's dangling
    # references are reported, and fail it only with checks.fail_on_dangling_bindings.
    "RBAC-5": ("dangling role and subject references are found", CAPABILITY),
    # Asked of the cluster's own subjects (its users' groups, every service account, everyone,
    # nobody) against every binding its owner made: posture of its RBAC.
    "RBAC-6": ("no subject class holds an escalation right beyond the profile's grants", POSTURE),
    "AUDIT-1": ("the API server records what the audit policy says, and nothing else", POSTURE),
    # The suite's pods and policies probe the cluster's own enforcer, which its owner chose:
    # posture of the enforcer (NETPOL-1 is its positive baseline).
    "NETPOL-1": ("no policy: every client reaches the server", POSTURE),
    "NETPOL-2": ("default-deny blocks every client", POSTURE),
    "NETPOL-3": ("podSelector peer admits only its own namespace", POSTURE),
    "NETPOL-4": ("namespaceSelector peer admits the labelled namespace", POSTURE),
    "NETPOL-5": ("full reachability matrix against a truth table", POSTURE),
    "NETPOL-6": ("an admin-tier Deny is not opened by a namespaced allow", POSTURE),
    "NETPOL-7": ("an admin-tier Pass hands the decision to NetworkPolicy", POSTURE),
    "NETPOL-8": ("a baseline-tier Deny holds where no NetworkPolicy selects, and a namespaced allow opens it", POSTURE),
    "PRIV-1": ("privileged hostNetwork pod rejected on a hardened namespace", POSTURE),
    "PRIV-2": ("control-plane privileged pods keep running under enforcement", POSTURE),
    # PSP-1..4 and EXC-1: the gate (a ValidatingAdmissionPolicy on `use` of a policy) is the
    # suite's own; the cluster's own pods are not gated by it.
    "PSP-1": ("non-root pod rejected without an authorized policy", CAPABILITY),
    "PSP-2": ("restricted policy admits the non-root pod, not a privileged one", CAPABILITY),
    "PSP-3": ("controller cannot create pods while its service account is not authorized", CAPABILITY),
    "PSP-4": ("controller creates pods once its service accounts are authorized", CAPABILITY),
    # The suite's pod asks for runAsNonRoot itself and every kubelet honours that: it does not
    # show that anyone's pods must run as non-root (admission levels are PRIV-1's).
    "PSP-5": ("image running as root under runAsNonRoot never starts", CAPABILITY),
    "EXC-1": ("permissive policy usable by one service account only", CAPABILITY),
    # can-i about the suite's own policy objects and exception.
    "EXC-2": ("can-i use reports the exception for that account and no other", CAPABILITY),
    # The suite's pod asks for every restriction it checks (drop ALL, no privilege escalation,
    # RuntimeDefault, read-only root): the node honours them; no pod of the owner's is observed.
    "VERIFY-1": ("what a restricted container really runs with", CAPABILITY),
    # Reports the admission mechanisms the cluster as configured has.
    "VERSION-1": ("the mechanism is picked from the server version", POSTURE),
    # The suite's pod only knocks; the kubelet's authentication, authorization and read-only
    # port, and where the control plane listens, are the owner's configuration: posture.
    "NODE-1": ("the node as a pod meets it: kubelet, etcd and control-plane ports refuse without credentials", POSTURE),
}

BEHAVIOURS: dict[str, str] = {b: title for b, (title, _) in CATALOGUE.items()}
CLAIMS: dict[str, str] = {b: kind for b, (_, kind) in CATALOGUE.items()}


def parse_selection(text: str | None, catalogue: dict[str, str] = BEHAVIOURS) -> set[str] | None:
    """Parse a comma-separated list of behaviour IDs (built-in, or the user's declared ones); None means all."""
    if not text:
        return None
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    chosen = {c.upper() if c.upper() in BEHAVIOURS else c for c in chosen}
    unknown = sorted(chosen - catalogue.keys())
    if unknown:
        raise K8sSecError(
            f"unknown behaviour ID {', '.join(unknown)} in --k8s-sec-behaviours; "
            f"known IDs: {', '.join(catalogue)}"
        )
    return chosen


def kind_of(behaviour: str) -> str:
    """A behaviour's kind of claim; an ID not in the catalogue is the user's own."""
    return CLAIMS.get(behaviour, USER)
