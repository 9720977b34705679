"""can-i answers: as a certificate user, for any user/group (SubjectAccessReview), by impersonation.

Resources are resolved through API discovery, so a misspelled resource or a made-up subresource
is an error instead of a silent "yes" from a wildcard rule.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.resource import ResourceList

from .errors import K8sSecError
from .kube import dynamic_client
from .profile import AccessCase
from .waits import WaitTimeout, wait_for


@dataclass(frozen=True)
class Question:
    """One can-i question in terms the authorizer understands."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.verb} {self.resource}/{self.subresource}" if self.subresource else f"{self.verb} {self.resource}"

    def attributes(self) -> client.V1ResourceAttributes:
        return client.V1ResourceAttributes(verb=self.verb, group=self.group, resource=self.resource,
                                           subresource=self.subresource or None, namespace=self.namespace, name=self.name)


# Resources the authorizer knows that discovery never lists: the targets of `impersonate`.
IMPERSONATION_RESOURCES = {"users", "groups", "uids"}


class Discovery:
    """Which group serves a resource, and which subresources exist: the client's own (cached) discovery."""

    def __init__(self, api: client.ApiClient) -> None:
        self._resources = dynamic_client(api).resources

    def question(self, verb: str, resource: str, subresource: str = "", namespace: str | None = None) -> Question:
        if resource in IMPERSONATION_RESOURCES and not subresource:
            return Question(verb, "", resource)
        served = [r for r in self._resources.search(name=resource) if r.preferred and not isinstance(r, ResourceList)]
        if not served:
            raise K8sSecError(f"resource {resource!r} is not served by this cluster (API discovery); fix the profile")
        found = min(served, key=lambda r: r.group != "")  # the core group first, as kubectl resolves names
        if subresource and subresource not in (found.subresources or {}):
            raise K8sSecError(f"{resource}/{subresource} is not a subresource this cluster serves "
                              f"(known: {', '.join(sorted(found.subresources or {})) or 'none'}); fix the profile")
        return Question(verb, found.group, resource, subresource, namespace if found.namespaced else None)

    def for_case(self, case: AccessCase, namespaces: dict[str, str]) -> Question:
        return self.question(case.verb, case.resource, case.subresource, namespaces.get(case.scope))


def await_grant(admin: client.ApiClient, q: Question, user: str, groups: list[str], what: str) -> None:
    """Wait until the authorizer, which reads roles and bindings from a cache, answers yes to `q`.

    Acting as the subject right after creating its binding can meet the moment before (CI saw
    it). A grant that never lands is left for the case to report with what it observes.
    """
    with contextlib.suppress(WaitTimeout):
        wait_for(f"{what} to reach the authorizer", lambda: review_can_i(admin, q, user, groups), timeout=15)


def self_can_i(api: client.ApiClient, q: Question) -> bool:
    """The answer for whoever `api` authenticates as (SelfSubjectAccessReview)."""
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=q.attributes()))
    return bool(client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)


AUTHENTICATED = "system:authenticated"


def subject_can_i(admin: client.ApiClient, q: Question, user: str, groups: list[str], exact: bool = False) -> bool:
    """The answer for any user and groups, asked by the admin (SubjectAccessReview, cluster-wide).

    `exact` asks for exactly these groups: a request without credentials is not in system:authenticated.
    """
    spec = (client.V1SubjectAccessReviewSpec(resource_attributes=q.attributes(), user=user, groups=list(groups)) if exact
            else _review_spec(q, user, groups))
    return bool(client.AuthorizationV1Api(admin).create_subject_access_review(client.V1SubjectAccessReview(spec=spec)).status.allowed)


def ask_can_i(admin: client.ApiClient, verb: str, resource: str, namespace: str | None, user: str,
              groups: Sequence[str]) -> tuple[Question, bool]:
    """can-i about `resource` or `resource/subresource` for any subject, resolved through discovery: the question as
    asked and the authorizer's answer. The helpers for the user's tests and the claims file both ask here."""
    base, _, sub = resource.partition("/")
    q = Discovery(admin).question(verb, base, sub, namespace)
    return q, subject_can_i(admin, q, user, list(groups))


def review_can_i(admin: client.ApiClient, q: Question, user: str, groups: list[str]) -> bool:
    """The same answer, asked in the question's namespace (LocalSubjectAccessReview) when it has one.

    An identity that works inside namespaces, with no cluster-wide right, may ask this one.
    """
    if not q.namespace:
        return subject_can_i(admin, q, user, groups)
    review = client.V1LocalSubjectAccessReview(metadata=client.V1ObjectMeta(namespace=q.namespace),
                                               spec=_review_spec(q, user, groups))
    return bool(client.AuthorizationV1Api(admin).create_namespaced_local_subject_access_review(q.namespace, review)
                .status.allowed)


def _review_spec(q: Question, user: str, groups: list[str]) -> client.V1SubjectAccessReviewSpec:
    """The API server adds system:authenticated to every authenticated user, but a review checks
    exactly the groups it names: without it, bindings to all users would go unseen."""
    groups = groups if AUTHENTICATED in groups else [*groups, AUTHENTICATED]
    return client.V1SubjectAccessReviewSpec(resource_attributes=q.attributes(), user=user, groups=groups)


class _ImpersonatedGroups:
    """The client's connection pool, adding one Impersonate-Group header line per group to every request.

    The API server reads each group from its own header line; the client's default headers
    hold one value per name, so the lines are added here.
    """

    def __init__(self, pool: Any, groups: Sequence[str]) -> None:
        self.pool, self.groups = pool, list(groups)

    def request(self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        lines = urllib3.HTTPHeaderDict(headers or {})
        for group in self.groups:
            lines.add("Impersonate-Group", group)
        return self.pool.request(method, url, headers=lines, **kwargs)


def impersonating(admin: client.ApiClient, user: str, groups: Sequence[str] = ()) -> client.ApiClient:
    """A client acting as `--as user --as-group g1 --as-group g2 ...`."""
    imp = client.ApiClient(admin.configuration)
    imp.set_default_header("Impersonate-User", user)
    if groups:
        imp.rest_client.pool_manager = _ImpersonatedGroups(imp.rest_client.pool_manager, groups)
    return imp


def impersonated_can_i(admin: client.ApiClient, q: Question, user: str, groups: Sequence[str] = ()) -> bool:
    """The answer with `--as user --as-group ...`: impersonation, then SelfSubjectAccessReview."""
    return self_can_i(impersonating(admin, user, groups), q)


def anonymous(admin: client.ApiClient) -> client.ApiClient:
    """A client that presents no credentials to the same server (trusting the same CA)."""
    cfg = copy.deepcopy(admin.configuration)
    cfg.cert_file = cfg.key_file = cfg.username = cfg.password = cfg.refresh_api_key_hook = None
    cfg.api_key, cfg.api_key_prefix = {}, {}
    return client.ApiClient(cfg)


def unauthenticated_reach(admin: client.ApiClient) -> dict[str, int]:
    """What a request without credentials gets for reads beyond health and discovery: label -> HTTP status."""
    anon = anonymous(admin)
    core, rbac = client.CoreV1Api(anon), client.RbacAuthorizationV1Api(anon)
    reads = {
        "list namespaces": core.list_namespace_with_http_info,
        "list nodes": core.list_node_with_http_info,
        "list pods in all namespaces": core.list_pod_for_all_namespaces_with_http_info,
        "list secrets in all namespaces": core.list_secret_for_all_namespaces_with_http_info,
        "list configmaps in kube-system": lambda: core.list_namespaced_config_map_with_http_info("kube-system"),
        "list clusterroles": rbac.list_cluster_role_with_http_info,
    }
    answers = {}
    for label, read in reads.items():
        try:
            answers[label] = read()[1]
        except ApiException as exc:
            answers[label] = exc.status
    return answers


@dataclass
class Matrix:
    """Expected and observed can-i answers, with a readable rendering of both and their diff."""

    rows: list[tuple[str, bool, bool]]  # (question label, expected, observed)

    @property
    def mismatches(self) -> list[tuple[str, bool, bool]]:
        return [row for row in self.rows if row[1] != row[2]]

    def document(self) -> list[dict[str, str]]:
        """Every answer, for the report's evidence (and a later run's baseline diff)."""
        return [{"can-i": label, "expected": _yn(expected), "observed": _yn(observed)} for label, expected, observed in self.rows]

    def render(self, only_mismatches: bool = False) -> str:
        rows = self.mismatches if only_mismatches else self.rows
        width = max(len(label) for label, _, _ in rows)
        lines = [f"{'can-i':{width}}  expected  observed", f"{'-' * width}  --------  --------"]
        for label, expected, observed in rows:
            mark = "" if expected == observed else "   <-- MISMATCH"
            lines.append(f"{label:{width}}  {_yn(expected):8}  {_yn(observed):8}{mark}")
        return "\n".join(lines)


def _yn(value: bool) -> str:
    return "yes" if value else "no"
