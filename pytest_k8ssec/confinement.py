"""RBAC-2 outside the tenant: the user's answers in every namespace the run did not make, each yes named with its grant.

RBAC answers a namespaced question from the ClusterRoleBindings, which hold in every namespace,
and from the RoleBindings of that namespace. So each question is asked once for every namespace
at once (namespace ""), and again only in the namespaces whose RoleBindings name the user, one of
its groups or every authenticated user: on a cluster with thousands of namespaces the questions
stay a few dozen. As in RBAC-6, a non-RBAC authorizer that grants per namespace is seen only where
RBAC could grant too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from kubernetes import client

from .access import Matrix, Question, subject_can_i
from .escalation import RbacObjects
from .grants import Subject, namespaces_binding


def confinement(admin: client.ApiClient, questions: list[Question], namespaces: list[str], subject: Subject,
                objects: RbacObjects) -> Matrix:
    """Every namespaced question, expected "no" outside the tenant (SubjectAccessReview, in parallel)."""
    namespaced = list(dict.fromkeys(replace(q, namespace="") for q in questions if q.namespace is not None))
    bound = sorted(namespaces_binding(subject, objects.bindings) & set(namespaces))
    asks = [replace(q, namespace=ns) for ns in ["", *bound] for q in namespaced]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda q: subject_can_i(admin, q, subject.user, list(subject.groups)), asks))
    return Matrix([(_label(q, yes, subject, objects), False, yes) for q, yes in zip(asks, answers)])


def _label(q: Question, yes: bool, subject: Subject, objects: RbacObjects) -> str:
    where = "in every namespace" if q.namespace == "" else f"in {q.namespace}"
    if not yes:
        return f"{q.label} {where}"
    grants = objects.grants(q, subject)
    return f"{q.label} {where} ({'; '.join(map(str, grants)) or 'no RBAC binding: another authorizer answered yes'})"
