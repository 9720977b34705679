"""Profiles: what the cluster under test is expected to enforce, loaded and validated from YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .behaviours import BEHAVIOURS
from .errors import ProfileError

SCOPES = ("tenant", "other", "cluster")
PSA_LEVELS = ("privileged", "baseline", "restricted")
IMAGE_KEYS = ("busybox", "busybox_nonroot", "httpd", "root_user")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# What cluster-scoped network policies the tables cannot read (Calico's, Cilium's...) do to the lab's traffic:
# deny what no NetworkPolicy allows (a baseline default deny), both ways or ingress only; or nothing.
CLUSTER_BASELINES = ("deny", "deny-ingress", "none")
# RBAC-6: the subject classes a profile states escalation answers for (escalation.subjects).
SUBJECT_CLASSES = ("user", "service_accounts", "default_service_accounts", "authenticated", "anonymous")
ESCALATION_SCOPES = ("any", "other", "cluster")  # every namespace; every namespace but the subject's own; cluster-scoped
_ACCESS_KEY = re.compile(r"^(?P<verb>[a-z*]+) (?P<resource>[a-z*.]+)(?:/(?P<sub>[a-z]+))?(?: in (?P<scope>\w+))?$")


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
    cluster_baseline: str | None = None           # what unread cluster-scoped network policies do (CLUSTER_BASELINES)
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
        raise ProfileError(path, "(file)", "a readable YAML file", exc.strerror or str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        raise ProfileError(path, f"(YAML {where})", "valid YAML", getattr(exc, "problem", str(exc))) from None
    return parse_profile(data, path)


def parse_profile(data: Any, path: str | Path = "<profile>") -> Profile:
    v = _Validator(path)
    root = v.mapping(data, "(top level)")
    v.only(root, "(top level)", {"name", "developer_role", "user", "access", "networkpolicy", "admission", "audit", "checks",
                                   "images", "not_applicable", "escalation"})
    role = v.mapping(root.get("developer_role"), "developer_role")
    user = v.mapping(root.get("user"), "user")
    v.only(user, "user", {"name", "groups", "kubeconfig"})
    access = v.mapping(root.get("access"), "access")
    v.only(access, "access", {"before_extra_rules", "after_extra_rules", "only_in_tenant"})
    netpol = v.mapping(root.get("networkpolicy", {}), "networkpolicy")
    v.only(netpol, "networkpolicy", {"enforced", "cluster_baseline"})
    adm = v.mapping(root.get("admission", {}), "admission")
    audit = v.mapping(root.get("audit", {}), "audit")
    checks = v.mapping(root.get("checks", {}), "checks")
    v.only(adm, "admission", {"enforced", "tenant_level", "default_level", "hardened_namespaces", "permissive_namespace_labels"})
    level = v.level(adm.get("tenant_level", "restricted"), "admission.tenant_level")
    profile = Profile(
        path=str(path),
        name=v.string(root.get("name"), "name"),
        developer_group=v.string(role.get("group"), "developer_role.group"),
        developer_rules=v.rules(role.get("rules"), "developer_role.rules"),
        extra_rules=v.rules(role.get("extra_rules", []), "developer_role.extra_rules"),
        user_name=v.string(user.get("name"), "user.name"),
        user_groups=v.strings(user.get("groups"), "user.groups"),
        user_kubeconfig=v.optional_string(user.get("kubeconfig"), "user.kubeconfig"),
        access_before=v.questions(access.get("before_extra_rules"), "access.before_extra_rules"),
        access_after=v.access(access.get("after_extra_rules", {}), "access.after_extra_rules"),
        only_in_tenant=v.boolean(access.get("only_in_tenant", True), "access.only_in_tenant"),
        netpol_enforced=v.boolean(netpol.get("enforced", True), "networkpolicy.enforced"),
        cluster_baseline=v.one_of(netpol.get("cluster_baseline"), "networkpolicy.cluster_baseline", CLUSTER_BASELINES),
        admission_enforced=v.boolean(adm.get("enforced", True), "admission.enforced"),
        tenant_level=level,
        default_level=None if adm.get("default_level") is None else v.level(adm["default_level"], "admission.default_level"),
        hardened_namespaces={ns: v.level(lvl, f"admission.hardened_namespaces.{ns}")
                             for ns, lvl in v.mapping(adm.get("hardened_namespaces", {}), "admission.hardened_namespaces").items()},
        permissive_labels=v.labels(adm.get("permissive_namespace_labels", {}), "admission.permissive_namespace_labels"),
        audit_log_path=v.optional_string(audit.get("log_path"), "audit.log_path"),
        audit_log_command=v.optional_string(audit.get("log_command"), "audit.log_command"),
        audit_policy=v.audit_policy(audit.get("policy"), "audit.policy"),
        fail_on_dangling_bindings=v.boolean(checks.get("fail_on_dangling_bindings", False), "checks.fail_on_dangling_bindings"),
        images=v.images(root.get("images", {}), "images"),
        not_applicable=v.not_applicable(root.get("not_applicable", {}), "not_applicable"),
        escalation=None if root.get("escalation") is None else v.escalation(root["escalation"], "escalation"),
    )
    v.role_update(profile, role.get("extra_rules"), access.get("after_extra_rules"))
    return profile


def _escalation_case(text: str) -> AccessCase | None:
    """One escalation question, its scope `any` (every namespace) unless it says `in other` or `in cluster`."""
    m = _ACCESS_KEY.match(text)
    if not m or (m["scope"] or "any") not in ESCALATION_SCOPES:
        return None
    return AccessCase(m["verb"], m["resource"], m["sub"] or "", m["scope"] or "any", False)


class _Validator:
    """Type checks that raise ProfileError with the file and key."""

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def fail(self, key: str, expected: str, got: Any) -> ProfileError:
        return ProfileError(self.path, key, expected, got)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping", value)
        return value

    def only(self, value: dict[str, Any], key: str, allowed: set[str]) -> None:
        extra = sorted(set(value) - allowed)
        if extra:
            raise self.fail(f"{key}.{extra[0]}" if key != "(top level)" else extra[0], f"one of the known keys ({', '.join(sorted(allowed))})", extra[0])

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string", value)
        return value

    def optional_string(self, value: Any, key: str) -> str | None:
        return None if value is None else self.string(value, key)

    def strings(self, value: Any, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise self.fail(key, "a list of strings", value)
        return value

    def labels(self, value: Any, key: str) -> dict[str, str]:
        labels = self.mapping(value, key)
        for name, text in labels.items():
            self.string(text, f"{key}.{name}")
        return labels

    def level(self, value: Any, key: str) -> str:
        if value not in PSA_LEVELS:
            raise self.fail(key, f"one of {', '.join(PSA_LEVELS)}", value)
        return value

    def one_of(self, value: Any, key: str, choices: tuple[str, ...]) -> str | None:
        """An optional choice: absent (None) or one of `choices`."""
        if value is not None and value not in choices:
            raise self.fail(key, f"one of {', '.join(choices)}", value)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def images(self, value: Any, key: str) -> dict[str, Any]:
        images = self.mapping(value, key)
        self.only(images, key, {*IMAGE_KEYS, "pull_policy", "httpd_command"})
        result: dict[str, Any] = {k: self.string(images[k], f"{key}.{k}") for k in IMAGE_KEYS if k in images}
        if "pull_policy" in images:
            if images["pull_policy"] not in PULL_POLICIES:
                raise self.fail(f"{key}.pull_policy", f"one of {', '.join(PULL_POLICIES)}", images["pull_policy"])
            result["pull_policy"] = images["pull_policy"]
        if "httpd_command" in images:
            result["httpd_command"] = tuple(self.strings(images["httpd_command"], f"{key}.httpd_command"))
        return result

    def not_applicable(self, value: Any, key: str) -> dict[str, str]:
        declared = self.mapping(value, key)
        for behaviour, reason in declared.items():
            if behaviour not in BEHAVIOURS:
                raise self.fail(f"{key}.{behaviour}", f"a behaviour ID ({', '.join(BEHAVIOURS)})", behaviour)
            self.string(reason, f"{key}.{behaviour}")
        return declared

    def audit_policy(self, value: Any, key: str) -> dict[str, Any]:
        policy = self.mapping(value, key)
        if policy.get("apiVersion") != "audit.k8s.io/v1" or policy.get("kind") != "Policy":
            raise self.fail(key, "an audit.k8s.io/v1 Policy", f"{policy.get('apiVersion')}/{policy.get('kind')}")
        if not isinstance(policy.get("rules"), list) or not policy["rules"]:
            raise self.fail(f"{key}.rules", "a non-empty list of audit rules", policy.get("rules"))
        return policy

    def rules(self, value: Any, key: str) -> list[dict[str, list[str]]]:
        if not isinstance(value, list) or not value and key.endswith(".rules"):
            raise self.fail(key, "a non-empty list of RBAC rules", value)
        for i, rule in enumerate(value):
            rule = self.mapping(rule, f"{key}[{i}]")
            self.only(rule, f"{key}[{i}]", {"apiGroups", "resources", "verbs"})
            for part in ("apiGroups", "resources", "verbs"):
                self.strings(rule.get(part), f"{key}[{i}].{part}")
        return value

    def questions(self, value: Any, key: str) -> list[AccessCase]:
        """The can-i matrix RBAC-2 and RBAC-4 ask: with no question they would pass having observed nothing."""
        cases = self.access(value, key)
        if not cases:
            raise self.fail(key, 'at least one can-i question, e.g. "get secrets": no (with none, RBAC-2 and RBAC-4 check nothing)', value)
        return cases

    def escalation(self, value: Any, key: str) -> Escalation:
        """RBAC-6's questions (none would pass having observed nothing) and each class's grants among them."""
        section = self.mapping(value, key)
        self.only(section, key, {"questions", "subjects"})
        texts = self.strings(section.get("questions"), f"{key}.questions")
        if not texts:
            raise self.fail(f"{key}.questions", 'at least one question, e.g. "get secrets" (with none, RBAC-6 checks nothing)', texts)
        questions = []
        for text in texts:
            case = _escalation_case(text)
            if case is None:
                raise self.fail(f"{key}.questions.{text}", "'<verb> <resource>[/<subresource>] [in other|cluster]'", text)
            questions.append(case)
        labels = {q.label for q in questions}
        subjects = self.mapping(section.get("subjects"), f"{key}.subjects")
        self.only(subjects, f"{key}.subjects", set(SUBJECT_CLASSES))
        missing = [c for c in SUBJECT_CLASSES if c not in subjects]
        if missing:
            raise self.fail(f"{key}.subjects.{missing[0]}", "every subject class, each with the questions it may be granted ([] for none)",
                            None)
        granted = {}
        for cls, allowed in subjects.items():
            cases = [_escalation_case(t) for t in self.strings(allowed if allowed is not None else [], f"{key}.subjects.{cls}")]
            for text, case in zip(allowed or [], cases):
                if case is None or case.label not in labels:
                    raise self.fail(f"{key}.subjects.{cls}", f"questions from {key}.questions", text)
            granted[cls] = frozenset(c.label for c in cases if c)
        return Escalation(tuple(questions), granted)

    def role_update(self, profile: Profile, extra_rules: Any, after: Any) -> None:
        """RBAC-3 must see an answer change from no to yes, or the profile must say it does not apply."""
        if "RBAC-3" in profile.not_applicable:
            return
        declare = "or declare RBAC-3 in not_applicable with the reason"
        if not profile.extra_rules:
            raise self.fail("developer_role.extra_rules",
                            f"a non-empty list of the rules the developer role gains later (RBAC-3), {declare}", extra_rules)
        if not any(case.allowed for case in profile.access_after):
            raise self.fail("access.after_extra_rules", "can-i questions with at least one answered yes once the extra rules "
                            f"are added (else RBAC-3 sees no change), {declare}", after)

    def access(self, value: Any, key: str) -> list[AccessCase]:
        value = self.mapping(value, key)
        cases = []
        for question, answer in value.items():
            m = _ACCESS_KEY.match(str(question))
            if not m:
                raise self.fail(f"{key}.{question}", "'<verb> <resource>[/<subresource>] [in tenant|other|cluster]'", question)
            scope = m["scope"] or "tenant"
            if scope not in SCOPES:
                raise self.fail(f"{key}.{question}", f"a scope among {', '.join(SCOPES)}", scope)
            if not isinstance(answer, bool):
                raise self.fail(f"{key}.{question}", "yes or no", answer)
            cases.append(AccessCase(m["verb"], m["resource"], m["sub"] or "", scope, answer))
        return cases
