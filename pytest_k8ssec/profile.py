"""Profiles: what the cluster under test is expected to enforce, loaded from YAML.

Validated against the published JSON Schema (`schemas/profile.schema.json`); in code only what
a schema cannot say: a behaviour ID being built in, escalation grants being among the questions,
and a role update RBAC-3 can see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .behaviours import BEHAVIOURS
from .errors import ProfileError
from .schema import load_yaml, violation

PSA_LEVELS = ("privileged", "baseline", "restricted")  # least strict first


@dataclass(frozen=True)
class AccessCase:
    """One can-i question and its expected answer."""

    verb: str
    resource: str
    subresource: str = ""
    scope: str = "tenant"
    allowed: bool = False

    @property
    def label(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {res} in {self.scope}"


@dataclass(frozen=True)
class Escalation:
    """RBAC-6: the escalation questions, asked of every subject class, and what each class may be granted."""

    questions: tuple[AccessCase, ...]
    granted: dict[str, frozenset[str]]  # subject class -> the labels of the questions it may be answered yes

    def allowed(self, subject_class: str, case: AccessCase) -> bool:
        return case.label in self.granted.get(subject_class, frozenset())


@dataclass
class Profile:
    """A validated profile. Field names follow the YAML keys."""

    path: str
    name: str
    developer_group: str
    developer_rules: list[dict[str, list[str]]]
    extra_rules: list[dict[str, list[str]]]
    user_name: str
    user_groups: list[str]
    access_before: list[AccessCase]
    access_after: list[AccessCase]
    only_in_tenant: bool = True
    user_kubeconfig: str | None = None            # a user of the developers' group, where no CSR signer exists
    netpol_enforced: bool = True
    cluster_baseline: str | None = None           # what unread cluster-scoped network policies do: deny, deny-ingress, none
    admission_enforced: bool = True
    tenant_level: str = "restricted"
    default_level: str | None = None              # the least strict level a namespace nobody labelled may enforce
    hardened_namespaces: dict[str, str] = field(default_factory=dict)  # existing namespace -> least strict level
    permissive_labels: dict[str, str] = field(default_factory=dict)  # labels that exempt a namespace from the cluster's policy
    audit_log_path: str | None = None
    audit_log_command: str | None = None
    audit_policy: dict[str, Any] = field(default_factory=dict)
    fail_on_dangling_bindings: bool = False
    images: dict[str, Any] = field(default_factory=dict)  # overrides of the cluster's Images
    not_applicable: dict[str, str] = field(default_factory=dict)  # behaviour ID -> why it does not apply
    escalation: Escalation | None = None          # RBAC-6; None: the profile states none (RBAC-6 not observed)


def default_profile_path() -> Path:
    return Path(str(resources.files("pytest_k8ssec") / "profiles" / "default.yaml"))


def load_profile(path: str | Path | None = None) -> Profile:
    """Read and validate a profile; errors name the file, the key and what was expected."""
    path = Path(path) if path else default_profile_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProfileError(path, "", "a readable YAML file", exc.strerror or str(exc)) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(path, f"line {mark.line + 1}" if mark else "", "valid YAML", getattr(exc, "problem", str(exc))) from None
    return parse_profile(data, path)


def parse_profile(data: Any, path: str | Path = "<profile>") -> Profile:
    """A profile from its YAML data: its schema first, then what only code can check."""
    found = violation("profile", data)
    if found:
        raise ProfileError(path, found.key(), found.expected, found.got)
    role, user, access, audit = data["developer_role"], data["user"], data["access"], data["audit"]
    netpol, adm, checks = (data.get(key, {}) for key in ("networkpolicy", "admission", "checks"))
    images = dict(data.get("images", {}))
    if "httpd_command" in images:
        images["httpd_command"] = tuple(images["httpd_command"])
    profile = Profile(
        path=str(path),
        name=data["name"],
        developer_group=role["group"],
        developer_rules=role["rules"],
        extra_rules=role.get("extra_rules", []),
        user_name=user["name"],
        user_groups=user["groups"],
        user_kubeconfig=user.get("kubeconfig"),
        access_before=[_case(q, "tenant", answer) for q, answer in access["before_extra_rules"].items()],
        access_after=[_case(q, "tenant", answer) for q, answer in access.get("after_extra_rules", {}).items()],
        only_in_tenant=access.get("only_in_tenant", True),
        netpol_enforced=netpol.get("enforced", True),
        cluster_baseline=netpol.get("cluster_baseline"),
        admission_enforced=adm.get("enforced", True),
        tenant_level=adm.get("tenant_level", "restricted"),
        default_level=adm.get("default_level"),
        hardened_namespaces=adm.get("hardened_namespaces", {}),
        permissive_labels=adm.get("permissive_namespace_labels", {}),
        audit_log_path=audit.get("log_path"),
        audit_log_command=audit.get("log_command"),
        audit_policy=audit["policy"],
        fail_on_dangling_bindings=checks.get("fail_on_dangling_bindings", False),
        images=images,
        not_applicable=_not_applicable(path, data.get("not_applicable", {})),
        escalation=None if data.get("escalation") is None else _escalation(path, data["escalation"]),
    )
    _role_update(path, profile, role.get("extra_rules"), access.get("after_extra_rules"))
    return profile


def _case(question: str, scope: str, allowed: bool = False) -> AccessCase:
    """A question the schema accepted, `<verb> <resource>[/<subresource>] [in <scope>]`; `scope` when it names none."""
    verb, rest = question.split(" ", 1)
    target, _, named = rest.partition(" in ")
    resource, _, sub = target.partition("/")
    return AccessCase(verb, resource, sub, named or scope, allowed)


def _not_applicable(path: str | Path, declared: dict[str, str]) -> dict[str, str]:
    """Behaviours the profile says do not apply: only the built-in ones (the claims file is read later)."""
    for behaviour in declared:
        if behaviour not in BEHAVIOURS:
            raise ProfileError(path, f"not_applicable.{behaviour}", f"a behaviour ID ({', '.join(BEHAVIOURS)})", behaviour)
    return declared


def _escalation(path: str | Path, section: dict[str, Any]) -> Escalation:
    """RBAC-6's questions (scope `any` unless named) and each class's grants, which must be among them."""
    questions = tuple(_case(text, "any") for text in section["questions"])
    labels = {q.label for q in questions}
    granted = {}
    for cls, texts in section["subjects"].items():
        granted[cls] = frozenset(_case(text, "any").label for text in texts or [])
        stray = [text for text in texts or [] if _case(text, "any").label not in labels]
        if stray:
            raise ProfileError(path, f"escalation.subjects.{cls}", "questions from escalation.questions", stray[0])
    return Escalation(questions, granted)


def _role_update(path: str | Path, profile: Profile, extra_rules: Any, after: Any) -> None:
    """RBAC-3 must see an answer change from no to yes, or the profile must say it does not apply."""
    if "RBAC-3" in profile.not_applicable:
        return
    declare = "or declare RBAC-3 in not_applicable with the reason"
    if not profile.extra_rules:
        raise ProfileError(path, "developer_role.extra_rules",
                           f"a non-empty list of the rules the developer role gains later (RBAC-3), {declare}", extra_rules)
    if not any(case.allowed for case in profile.access_after):
        raise ProfileError(path, "access.after_extra_rules", "can-i questions with at least one answered yes once the extra "
                           f"rules are added (else RBAC-3 sees no change), {declare}", after)
