"""RBAC-6: the escalation questions asked of every subject class, and each unexpected yes named with who grants it.

The classes are the identities a cluster's owner grants to in bulk: the certificate user and its
groups, every service account, each namespace's `default` account, every authenticated user,
and requests without credentials. Each question is asked with a SubjectAccessReview (the
authorizer's answer, whatever authorizers the cluster chains); each yes is then attributed from
the RBAC objects (`grants.py`).

Where it is asked: cluster-scoped questions once; namespaced ones across every namespace at once
(namespace "", which only ClusterRoleBindings answer) and in each namespace whose RoleBindings
name one of the class's subjects. For RBAC, any other namespace answers as "every namespace"
does; so the questions stay a few hundred on a cluster with thousands of namespaces. A
non-RBAC authorizer that grants per namespace is seen only where RBAC could grant too.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from kubernetes import client

from .access import AUTHENTICATED, Discovery, Question
from .errors import K8sSecError
from .grants import Grant, Subject, binds, granting, namespaces_binding
from .profile import AccessCase, Escalation

SERVICE_ACCOUNTS = "system:serviceaccounts"
# Stands for every service account: in no real namespace, so only grants to the groups reach it.
ANY_SERVICE_ACCOUNT = "system:serviceaccount:k8ssec-any-namespace:k8ssec-any-account"


# Questions that mean one named object: `approve` on the signer whose certificates the API server takes as client
# credentials (a rule naming it in resourceNames grants it; a nameless question would miss such a rule).
# Resources only the authorizer knows (discovery never lists them), and their groups.
AUTHORIZATION_ONLY = {"signers": "certificates.k8s.io"}
NAMED = {("certificates.k8s.io", "signers", "approve"): "kubernetes.io/kube-apiserver-client"}


@dataclass(frozen=True)
class SubjectClass:
    """One identity a class of subjects is asked as, and what it inherits from broader classes."""

    key: str                      # the profile's escalation.subjects key
    describe: str                 # for the failure line: "every service account"
    subject: Subject
    own_namespace: str | None = None
    exact: bool = False           # ask with exactly these groups (anonymous is not authenticated)
    broader: tuple[str, ...] = ()  # groups whose grants a broader class reports: not repeated here
    namespaced_only: bool = False  # no ClusterRoleBinding names it: its cluster-wide answers are a broader class's


@dataclass(frozen=True)
class Finding:
    """An unexpected yes: who, what, where, and the bindings that grant it."""

    who: str
    question: str
    where: str
    grants: tuple[Grant, ...]

    def __str__(self) -> str:
        by = "; ".join(map(str, self.grants)) or "no RBAC binding (another authorizer answered yes)"
        return f"{self.who} may {self.question} {self.where}: {by}".replace("  ", " ")


@dataclass
class RbacObjects:
    """The cluster's roles and bindings, as plain manifests."""

    cluster_roles: list[dict[str, Any]]
    roles: list[dict[str, Any]]
    cluster_bindings: list[dict[str, Any]]
    bindings: list[dict[str, Any]]

    def grants(self, req: Question, subject: Subject) -> list[Grant]:
        return granting(req, subject, self.cluster_roles, self.roles, self.cluster_bindings, self.bindings)


def read_rbac(api: client.ApiClient) -> RbacObjects:
    """Every role and binding of the cluster, read raw (plain JSON: quick on clusters with thousands of them)."""
    rbac = client.RbacAuthorizationV1Api(api)

    def items(lister: Callable[..., Any]) -> list[dict[str, Any]]:
        return json.loads(lister(_preload_content=False).data)["items"]
    return RbacObjects(items(rbac.list_cluster_role), items(rbac.list_role_for_all_namespaces),
                       items(rbac.list_cluster_role_binding), items(rbac.list_role_binding_for_all_namespaces))


def subject_classes(user: str, groups: Iterable[str], tenant: str, namespaces: Iterable[str], objects: RbacObjects) -> list[SubjectClass]:
    """Broadest first. A namespace's `default` account is its own class only where a binding names it (or its namespace's
    group): elsewhere it holds exactly what every service account holds."""
    classes = [
        SubjectClass("anonymous", "a request without credentials (system:anonymous)",
                     Subject("system:anonymous", ("system:unauthenticated",)), exact=True),
        SubjectClass("authenticated", "every authenticated user (system:authenticated)", Subject("k8ssec-any-user", (AUTHENTICATED,))),
        SubjectClass("service_accounts", f"every service account ({SERVICE_ACCOUNTS})",
                     Subject(ANY_SERVICE_ACCOUNT, (SERVICE_ACCOUNTS, AUTHENTICATED)), broader=(AUTHENTICATED,)),
        SubjectClass("user", f"the certificate user {user} (groups {', '.join(groups)})",
                     Subject(user, (*groups, AUTHENTICATED)), tenant, broader=(AUTHENTICATED,)),
    ]

    def named(bindings: list[dict[str, Any]]) -> set[str]:
        """The namespaces whose default account (or its namespace's group) these bindings name."""
        found = set()
        for b in bindings:
            for s in b.get("subjects") or []:
                if s.get("kind") == "ServiceAccount" and s.get("name") == "default":
                    found.add(s.get("namespace") or b["metadata"].get("namespace"))
                elif s.get("kind") == "Group" and str(s.get("name", "")).startswith(f"{SERVICE_ACCOUNTS}:"):
                    found.add(s["name"].split(":", 2)[2])
        return found
    by_cluster, by_namespace = named(objects.cluster_bindings), named(objects.bindings)
    for ns in namespaces:
        if ns in by_cluster or ns in by_namespace:
            classes.append(SubjectClass("default_service_accounts", f"the default service account of {ns}",
                                        Subject(f"system:serviceaccount:{ns}:default",
                                                (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{ns}", AUTHENTICATED)), ns,
                                        broader=(AUTHENTICATED, SERVICE_ACCOUNTS), namespaced_only=ns not in by_cluster))
    return classes


def _where(namespace: str | None) -> str:
    return "at cluster scope" if namespace is None else "in every namespace" if namespace == "" else f"in {namespace}"


def _question_text(case: AccessCase) -> str:
    text = f"{case.verb} {case.resource}/{case.subresource}" if case.subresource else f"{case.verb} {case.resource}"
    named = [name for (_, resource, verb), name in NAMED.items() if (resource, verb) == (case.resource, case.verb)]
    return f"{text} {named[0]}" if named else text


def asks(cls: SubjectClass, questions: list[tuple[AccessCase, Question]], namespaces: set[str],
         objects: RbacObjects) -> list[tuple[AccessCase, Question]]:
    """Each question where the class's answer may differ: once for cluster scope and for every namespace at once,
    then in each namespace (not excluded) whose RoleBindings name the class's subject."""
    bound = sorted(namespaces_binding(cls.subject, objects.bindings) & namespaces)
    out = []
    for case, q in questions:
        if q.namespace is None:
            if not cls.namespaced_only:
                out.append((case, q))
            continue
        if not cls.namespaced_only:
            out.append((case, replace(q, namespace="")))
        out += [(case, replace(q, namespace=ns)) for ns in bound if not (case.scope == "other" and ns == cls.own_namespace)]
    return out


def resolve(discovery: Discovery, escalation: Escalation) -> tuple[list[tuple[AccessCase, Question]], list[str]]:
    """The questions the cluster serves, and the labels of those it does not (e.g. an API too new for it)."""
    served, unserved = [], []
    for case in escalation.questions:
        try:
            q = (Question(case.verb, AUTHORIZATION_ONLY[case.resource], case.resource) if case.resource in AUTHORIZATION_ONLY
                 else discovery.question(case.verb, case.resource, case.subresource, ""))
            served.append((case, replace(q, name=NAMED.get((q.group, q.resource, q.verb)))))
        except K8sSecError:
            unserved.append(_question_text(case))
    return served, unserved


def escalations(ask: Callable[[Question, SubjectClass], bool], classes: list[SubjectClass],
                questions: list[tuple[AccessCase, Question]], namespaces: set[str], objects: RbacObjects,
                escalation: Escalation, workers: int = 10) -> tuple[int, list[Finding]]:
    """Ask every class every question where it may differ (in parallel); each yes the profile does not grant is a Finding,
    named with its bindings, unless only a broader class's group grants it (that class reports it)."""
    work = [(cls, case, q) for cls in classes for case, q in asks(cls, questions, namespaces, objects)
            if not escalation.allowed(cls.key, case)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(lambda w: ask(w[2], w[0]), work))
    findings = []
    for (cls, case, q), yes in zip(work, answers):
        if not yes:
            continue
        grants = objects.grants(q, cls.subject)
        own = [g for g in grants if not _grants_to_broader(g, objects, cls.broader)]
        if grants and not own:
            continue
        findings.append(Finding(cls.describe, _question_text(case), _where(q.namespace), tuple(own)))
    return len(work), findings


def _grants_to_broader(grant: Grant, objects: RbacObjects, groups: tuple[str, ...]) -> bool:
    if not groups:
        return False
    namespace, _, name = grant.binding.rpartition("/") if grant.binding_kind == "RoleBinding" else ("", "", grant.binding)
    pool = objects.bindings if grant.binding_kind == "RoleBinding" else objects.cluster_bindings
    broad = Subject("", groups)
    return any(b["metadata"]["name"] == name and (b["metadata"].get("namespace") or "") == namespace and binds(b, broad)
               for b in pool)
