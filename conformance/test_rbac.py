"""RBAC and users (seed 000, section 1; seed 004 on loose coupling): RBAC-1..5 and USER-1; RBAC-6, escalation by any class of subject."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import replace

import pytest
from kubernetes import client

from pytest_k8ssec import escalation, rbac, rights
from pytest_k8ssec.access import (AUTHENTICATED, Discovery, Matrix, Question, impersonated_can_i, review_can_i, self_can_i,
                                  subject_can_i, unauthenticated_reach)
from pytest_k8ssec.bindings import dangling_references
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.confinement import confinement
from pytest_k8ssec.fixtures import require_cluster_changes
from pytest_k8ssec.grants import Subject
from pytest_k8ssec.run import RUN_LABEL, run_prefix
from pytest_k8ssec.users import whoami
from pytest_k8ssec.waits import wait_counting

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights


@pytest.fixture(scope="module")
def discovery(k8s_admin):
    return Discovery(k8s_admin)


def _matrix(cases, tenancy, discovery, ask) -> Matrix:
    rows = []
    for case in cases:
        q = discovery.for_case(case, tenancy.namespaces)
        rows.append((case.label, case.allowed, ask(q)))
    return Matrix(rows)


def _asked(rows: Sized, what: str) -> None:
    """No rows would pass having observed nothing: the belt to the profile check that refuses an empty matrix."""
    assert rows, f"{what}: no can-i question was asked, so nothing was observed (is access.before_extra_rules empty?)"


def _role_update_matrix(before: Matrix, after: Matrix | None = None) -> list[dict[str, str]]:
    """RBAC-3's evidence whole: the answers before the update (labelled so) and after it."""
    rows = [(f"before the update: {label}", expected, observed) for label, expected, observed in before.rows]
    return Matrix(rows + (after.rows if after else [])).document()


@behaviour("RBAC-1")
def test_developer_role_grants_group_members_in_tenant_only(tenancy, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """Any member of the group may use every listed resource in the tenant namespace, and nowhere else."""
    k8s_evidence["mechanism"] = f"{tenancy.role_kind} + RoleBinding to group {k8s_profile.developer_group}; LocalSubjectAccessReview"
    member = ("k8ssec-any-member", [k8s_profile.developer_group])
    rows = []
    for rule in k8s_profile.developer_rules:
        for verb, resource in ((v, r) for v in rbac.verbs_to_ask(rule) for r in rule["resources"]):
            base, _, sub = resource.partition("/")
            for scope in ("tenant", "other"):
                q = discovery.question(verb, base, sub, tenancy.namespaces[scope])
                rows.append((f"{verb} {resource} in {scope}", scope == "tenant", review_can_i(k8s_admin, q, *member)))
    matrix = Matrix(rows)
    k8s_evidence.update(checked=len(rows), matrix=matrix.document())
    assert not matrix.mismatches, "group member's rights differ from the role:\n" + matrix.render()


@behaviour("USER-1")
def test_certificate_user_is_seen_with_its_groups(k8s_user, k8s_profile, k8s_evidence):
    """The CSR-signed certificate authenticates as the user, in its O= groups and system:authenticated."""
    k8s_evidence["mechanism"] = k8s_user.origin + "; SelfSubjectReview"
    name, groups = whoami(k8s_user.api())
    expected = sorted({*k8s_profile.user_groups, "system:authenticated"})
    k8s_evidence["observed"] = f"user={name} groups={','.join(groups)}"
    assert (name, groups) == (k8s_profile.user_name, expected), (
        f"API server sees user={name} groups={groups}; expected user={k8s_profile.user_name} groups={expected}")


@behaviour("RBAC-2")
@pytest.mark.parametrize("method", ["certificate-user", pytest.param("impersonation", marks=needs(*rights.IMPERSONATE)),
                                    pytest.param("subjectaccessreview", marks=needs(rights.SUBJECT_ACCESS_REVIEWS))])
def test_user_can_i_matches_profile(method, request, tenancy, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """can-i answers for the user, asked three ways, equal the profile's expected matrix."""
    user_name, groups = k8s_profile.user_name, k8s_profile.user_groups
    if method == "certificate-user":
        api = request.getfixturevalue("k8s_user").api()
        ask = lambda q: self_can_i(api, q)  # noqa: E731
    elif method == "impersonation":
        ask = lambda q: impersonated_can_i(k8s_admin, q, user_name, groups)  # noqa: E731
    else:
        ask = lambda q: subject_can_i(k8s_admin, q, user_name, groups)  # noqa: E731
    k8s_evidence["mechanism"] = {"certificate-user": "SelfSubjectAccessReview as the certificate user",
                                 "impersonation": "SelfSubjectAccessReview with Impersonate-User/Group",
                                 "subjectaccessreview": "SubjectAccessReview"}[method]
    matrix = _matrix(k8s_profile.access_before, tenancy, discovery, ask)
    k8s_evidence.update(checked=len(matrix.rows), matrix=matrix.document())
    _asked(matrix.rows, f"can-i ({method})")
    assert not matrix.mismatches, f"can-i answers ({method}) differ from the profile:\n" + matrix.render()


@behaviour("RBAC-2")
@needs(rights.SUBJECT_ACCESS_REVIEWS, rights.LIST_NAMESPACES)
def test_user_rights_end_at_the_tenant_namespace(tenancy, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """Every question of the profile, asked for every other namespace of the cluster, is answered no.

    The matrix above is asked in namespaces the run made; a grant the cluster's owner made to the
    developers' group (or to everyone) in `default` or a team's namespace shows only here, named
    with its binding. Asked once for all namespaces, and again where a RoleBinding names the user
    (`confinement.py`). Namespaces of k8s-sec runs (this one's and concurrent ones') are left out: they are ours.
    """
    if not k8s_profile.only_in_tenant:
        not_applicable("the profile grants the developers rights outside the tenant (access.only_in_tenant: false)")
    k8s_evidence["mechanism"] = ("SubjectAccessReview for the user and its groups, for all namespaces and in each whose "
                                 "RoleBindings name them")
    namespaces = [ns.metadata.name for ns in client.CoreV1Api(k8s_admin).list_namespace().items
                  if RUN_LABEL not in (ns.metadata.labels or {})]
    cases = [*k8s_profile.access_before, *k8s_profile.access_after]
    questions = [discovery.for_case(c, tenancy.namespaces) for c in cases]
    subject = Subject(k8s_profile.user_name, (*k8s_profile.user_groups, AUTHENTICATED))
    matrix = confinement(k8s_admin, questions, namespaces, subject, escalation.read_rbac(k8s_admin))
    k8s_evidence.update(checked=f"{len(matrix.rows)} answers for {len(namespaces)} namespaces", matrix=matrix.document())
    _asked(matrix.rows, "the rights outside the tenant")
    assert not matrix.mismatches, ("the developers have rights outside the tenant namespace:\n"
                                   + matrix.render(only_mismatches=True))


@behaviour("RBAC-2")
def test_unauthenticated_requests_read_nothing(k8s_admin, k8s_evidence):
    """Below the tenant there is nobody: a request without credentials reads nothing beyond health and discovery.

    Each read is refused (401 without anonymous auth, 403 with it); a server that answered none
    of them at all would raise here, never pass.
    """
    k8s_evidence["mechanism"] = "requests without credentials"
    answers = unauthenticated_reach(k8s_admin)
    k8s_evidence["observed"] = ", ".join(f"{r}: {code}" for r, code in answers.items())
    allowed = [f"{read} (HTTP {code})" for read, code in answers.items() if code not in (401, 403)]
    assert not allowed, "a request without credentials was answered: " + ", ".join(allowed)


@behaviour("RBAC-3")
def test_role_update_takes_effect_without_restart(tenancy, k8s_user, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """The user is refused what the extra rules grant; after the role gains them, it is allowed, with no restart.

    The "no" is observed first: on a cluster that already grants these, the "yes" after the
    update would show nothing about the update.
    """
    roles = client.RbacAuthorizationV1Api(k8s_admin)
    read, patch = ((roles.read_cluster_role, roles.patch_cluster_role) if tenancy.role_kind == "ClusterRole" else
                   (lambda n: roles.read_namespaced_role(n, tenancy.tenant), lambda n, b: roles.patch_namespaced_role(n, tenancy.tenant, b)))
    original = [k8s_admin.sanitize_for_serialization(r) for r in read(tenancy.role_name).rules]
    api = k8s_user.api()
    ask = lambda q: self_can_i(api, q)  # noqa: E731
    k8s_evidence["mechanism"] = f"{tenancy.role_kind} patched; SelfSubjectAccessReview as the certificate user"
    gained = [replace(case, allowed=False) for case in k8s_profile.access_after if case.allowed]
    before = _matrix(gained, tenancy, discovery, ask)
    k8s_evidence["matrix"] = _role_update_matrix(before)
    if before.mismatches:
        pytest.fail("before the role update, the cluster already grants the user: "
                    + ", ".join(label for label, _, _ in before.mismatches) + "; the update could show no change:\n"
                    + before.render(), pytrace=False)
    patch(tenancy.role_name, {"rules": k8s_profile.developer_rules + k8s_profile.extra_rules})
    try:
        after, attempts = wait_counting("the role update to take effect",
                                        lambda: _matrix(k8s_profile.access_after, tenancy, discovery, ask),
                                        timeout=30, ready=lambda m: not m.mismatches)
    except AssertionError:
        after = _matrix(k8s_profile.access_after, tenancy, discovery, ask)
        k8s_evidence["matrix"] = _role_update_matrix(before, after)
        pytest.fail("after the role update, can-i answers differ from the profile:\n" + after.render(), pytrace=False)
    finally:
        patch(tenancy.role_name, {"rules": original})
    k8s_evidence.update(attempts=attempts, matrix=_role_update_matrix(before, after))


@behaviour("RBAC-4")
@needs(rights.SUBJECT_ACCESS_REVIEWS, *rights.IMPERSONATE)
def test_subject_access_review_for_any_user_follows_bindings(k8s_run, k8s_admin, k8s_cluster, k8s_evidence):
    """SAR for system:node:<x> in system:nodes, `use` on a named policy: false before a ClusterRoleBinding, true after."""
    require_cluster_changes(k8s_cluster, "RBAC-4 (a ClusterRoleBinding)")
    user, group = f"system:node:{k8s_run.name('master')}", "system:nodes"
    policy = k8s_run.name("restricted")
    q = Question("use", "policy", "podsecuritypolicies", name=policy)
    k8s_evidence["mechanism"] = "SubjectAccessReview and impersonation"
    before = (subject_can_i(k8s_admin, q, user, [group]), impersonated_can_i(k8s_admin, q, user, [group]))
    assert before == (False, False), f"before any binding: SAR/impersonation said {before}, expected no/no"
    role = k8s_run.name("use-restricted")
    k8s_run.create(rbac.role(role, [rbac.use_rule(policy)]))
    k8s_run.create(rbac.binding(role, "ClusterRole", role, [rbac.user(user)]))
    after, attempts = wait_counting(
        "the ClusterRoleBinding to take effect",
        lambda: (subject_can_i(k8s_admin, q, user, [group]), impersonated_can_i(k8s_admin, q, user, [group])),
        timeout=30, ready=lambda a: a == (True, True))
    other = Question("use", "policy", "podsecuritypolicies", name=k8s_run.name("privileged"))
    assert not subject_can_i(k8s_admin, other, user, [group]), "the binding also granted `use` on a policy it does not name"
    k8s_evidence["observed"] = f"before={before} after={after} attempts={attempts}"


@behaviour("RBAC-4")
@needs(rights.SUBJECT_ACCESS_REVIEWS, *rights.IMPERSONATE)
def test_three_ways_of_asking_agree_for_the_certificate_user(tenancy, k8s_user, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """SubjectAccessReview, impersonation and the user's own requests give the same answers."""
    api = k8s_user.api()
    k8s_evidence["mechanism"] = "SAR vs impersonation vs SelfSubjectAccessReview"
    rows = []
    for case in k8s_profile.access_before:
        q = discovery.for_case(case, tenancy.namespaces)
        rows.append((case.label, self_can_i(api, q), subject_can_i(k8s_admin, q, k8s_profile.user_name, k8s_profile.user_groups),
                     impersonated_can_i(k8s_admin, q, k8s_profile.user_name, k8s_profile.user_groups)))
    k8s_evidence["checked"] = len(rows)
    _asked(rows, "the three ways of asking")
    disagreements = [f"{label}: user={user} sar={sar} impersonation={imp}" for label, user, sar, imp in rows if len({user, sar, imp}) > 1]
    assert not disagreements, "the ways of asking disagree:\n" + "\n".join(disagreements)


@behaviour("RBAC-5")
@needs(*rights.BINDINGS_SCAN)
def test_dangling_binding_is_accepted_grants_nothing_and_is_found(tenancy, k8s_run, k8s_admin, k8s_profile, k8s_evidence):
    """A RoleBinding to a missing Role and a missing service account is accepted, grants nothing, and is reported."""
    ghost_sa, ghost_role = "k8ssec-ghost-sa", k8s_run.name("ghost-role")
    name = k8s_run.name("dangling")
    k8s_run.create(rbac.binding(name, "Role", ghost_role, [rbac.service_account(ghost_sa, tenancy.tenant)], tenancy.tenant))
    q = Question("list", "", "pods", namespace=tenancy.tenant)
    ghost = Subject(f"system:serviceaccount:{tenancy.tenant}:{ghost_sa}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{tenancy.tenant}", AUTHENTICATED))
    if review_can_i(k8s_admin, q, ghost.user, list(ghost.groups)):
        # The ghost may: only a fault of the dangling binding if no other binding explains it (a grant to every
        # service account is RBAC-6's to report, not this binding's).
        others = escalation.read_rbac(k8s_admin).grants(Question("list", "", "pods", namespace=tenancy.tenant), ghost)
        assert others, (f"RoleBinding {tenancy.tenant}/{name} to the missing Role {ghost_role} granted its service account "
                        "`list pods`: no other binding grants it")
        k8s_evidence["the ghost's other grants"] = "list pods: " + "; ".join(map(str, others))
    found = {str(d) for d in dangling_references(k8s_admin, tenancy.tenant)}
    k8s_evidence["mechanism"] = "RoleBinding/ClusterRoleBinding scan"
    assert f"RoleBinding/{tenancy.tenant}/{name} -> missing Role {ghost_role}" in found, found
    assert f"RoleBinding/{tenancy.tenant}/{name} -> missing ServiceAccount {tenancy.tenant}/{ghost_sa}" in found, found
    ours = run_prefix(k8s_run.id)
    elsewhere = [str(d) for d in dangling_references(k8s_admin) if ours not in d.binding]
    k8s_evidence["dangling elsewhere"] = "; ".join(elsewhere) or "none"
    if k8s_profile.fail_on_dangling_bindings:
        assert not elsewhere, "dangling references on the cluster:\n" + "\n".join(elsewhere)


@behaviour("RBAC-6")
@needs(rights.SUBJECT_ACCESS_REVIEWS, rights.LIST_NAMESPACES, *rights.BINDINGS_SCAN)
def test_no_subject_class_holds_an_escalation_right(tenancy, k8s_admin, k8s_profile, discovery, k8s_evidence):
    """No class of subjects (the certificate user, every service account, each namespace's default account, every
    authenticated user, requests without credentials) may do what RBAC good practices list as escalation, beyond what
    the profile grants it; each yes names the bindings and roles that grant it.

    Namespaces of k8s-sec runs are left out, as in RBAC-2: their grants are the suite's own.
    """
    if k8s_profile.escalation is None:
        pytest.skip("the profile states no escalation questions (escalation:), so RBAC-6 observes nothing")
    k8s_evidence["mechanism"] = ("SubjectAccessReview per subject class; the granting bindings and roles read from "
                                 "ClusterRoleBindings, RoleBindings and their roles")
    namespaces = {ns.metadata.name for ns in client.CoreV1Api(k8s_admin).list_namespace().items
                  if RUN_LABEL not in (ns.metadata.labels or {})}
    objects = escalation.read_rbac(k8s_admin)
    classes = escalation.subject_classes(k8s_profile.user_name, k8s_profile.user_groups, tenancy.tenant, sorted(namespaces), objects)
    questions, unserved = escalation.resolve(discovery, k8s_profile.escalation)
    asked, findings = escalation.escalations(
        lambda q, cls: subject_can_i(k8s_admin, q, cls.subject.user, list(cls.subject.groups), exact=True),
        classes, questions, namespaces, objects, k8s_profile.escalation)
    k8s_evidence.update(checked=f"{asked} answers, {len(classes)} subject classes, {len(namespaces)} namespaces",
                        classes="; ".join(c.describe for c in classes), escalations=[str(f) for f in findings])
    if unserved:
        k8s_evidence["not served here"] = ", ".join(unserved)
    _asked(questions, "the escalation questions")
    assert not findings, "subjects hold escalation rights the profile does not grant them:\n" + "\n".join(map(str, findings))
