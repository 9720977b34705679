"""Profiles load, and malformed ones fail with the file, the key and what was expected."""

import pytest
import yaml

from pytest_k8ssec.errors import ProfileError
from pytest_k8ssec.profile import AccessCase, default_profile_path, load_profile, parse_profile


def default_data():
    return yaml.safe_load(default_profile_path().read_text())


def test_default_profile_is_the_seeds_lab():
    p = load_profile()
    assert p.user_name == "alice" and p.user_groups == ["mirantis", "developers"]
    assert p.developer_group == "developers"
    assert AccessCase("get", "pods", "log", "tenant", False) in p.access_before
    assert AccessCase("create", "pods", "exec", "tenant", True) in p.access_after
    assert p.audit_policy["omitStages"] == ["RequestReceived"]


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d.pop("user"), "user", "is missing or empty; it must be a mapping"),
    (lambda d: d["user"].update(groups="developers"), "user.groups", "must be a list of strings (got 'developers')"),
    (lambda d: d["admission"].update(tenant_level="strict"), "admission.tenant_level",
     "must be one of privileged, baseline, restricted (got 'strict')"),
    (lambda d: d["access"]["before_extra_rules"].update({"create pods in space": True}),
     "access.before_extra_rules.create pods in space", "[in tenant|other|cluster]"),
    (lambda d: d["access"]["before_extra_rules"].update({"create pods": "maybe"}), "access.before_extra_rules.create pods",
     "must be yes or no (got 'maybe')"),
    (lambda d: d["networkpolicy"].update(enforced="on"), "networkpolicy.enforced", "must be true or false (got 'on')"),
    (lambda d: d["networkpolicy"].update(cluster_baseline="allow"), "networkpolicy.cluster_baseline", "one of deny, deny-ingress, none"),
    (lambda d: d["networkpolicy"].update(baseline="deny"), "networkpolicy.baseline", "must be one of the known keys"),
    (lambda d: d.update(colour="blue"), "colour", "must be one of the known keys"),
    (lambda d: d["audit"]["policy"].update(kind="Pod"), "audit.policy.kind", "must be 'Policy' (got 'Pod')"),
    (lambda d: d["developer_role"]["rules"][0].pop("verbs"), "developer_role.rules[0].verbs", "is missing or empty"),
    (lambda d: d.update(not_applicable={"NOPE-1": "no reason"}), "not_applicable.NOPE-1", "must be a behaviour ID (RBAC-1,"),
    (lambda d: d["admission"].update(hardened_namespaces={"Default": "baseline"}), "admission.hardened_namespaces.Default",
     "must be a namespace name"),
])
def test_malformed_profile_names_file_key_and_expectation(mutate, key, expected):
    data = default_data()
    mutate(data)
    with pytest.raises(ProfileError) as err:
        parse_profile(data, "my.yaml")
    message = str(err.value)
    assert message.startswith(f"profile my.yaml: {key}: ") and expected in message and "\n" not in message, message


def test_unparseable_yaml_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nuser: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad.yaml: line \d+: must be valid YAML"):
        load_profile(bad)


def test_missing_profile_file(tmp_path):
    with pytest.raises(ProfileError, match="must be a readable YAML file"):
        load_profile(tmp_path / "nope.yaml")


def test_images_override_what_pods_run_and_are_checked():
    data = yaml.safe_load(default_profile_path().read_text())
    data["images"] = {"busybox": "mirror.example/busybox:1.36", "pull_policy": "Never", "httpd_command": []}
    assert parse_profile(data).images == {"busybox": "mirror.example/busybox:1.36", "pull_policy": "Never",
                                          "httpd_command": ()}
    data["images"] = {"pull_policy": "Sometimes"}
    with pytest.raises(ProfileError, match=r"images\.pull_policy.*one of Always, IfNotPresent, Never"):
        parse_profile(data)
    data["images"] = {"nginx": "nginx"}
    with pytest.raises(ProfileError, match=r"images\.nginx"):
        parse_profile(data)


def test_a_missing_key_is_named_missing_not_a_wrong_type(tmp_path):
    data = yaml.safe_load(default_profile_path().read_text())
    del data["developer_role"]["group"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"p.yaml: developer_role.group: is missing or empty; it must be a non-empty string"):
        load_profile(path)


def test_an_empty_can_i_matrix_is_refused():
    """RBAC-2 and RBAC-4 would pass having asked nothing."""
    data = default_data()
    data["access"]["before_extra_rules"] = {}
    with pytest.raises(ProfileError, match=r"^profile my.yaml: access.before_extra_rules: must be at least one can-i question"):
        parse_profile(data, "my.yaml")


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["access"].pop("after_extra_rules"), "access.after_extra_rules"),
    (lambda d: d["developer_role"].update(extra_rules=[]), "developer_role.extra_rules"),
    (lambda d: d["access"].update(after_extra_rules={"get secrets": False}), "access.after_extra_rules"),
])
def test_a_role_update_that_could_change_no_answer_is_refused_unless_rbac3_does_not_apply(mutate, key):
    """RBAC-3 would pass at once: nothing it asks after the update was to turn yes."""
    data = default_data()
    mutate(data)
    with pytest.raises(ProfileError) as err:
        parse_profile(data, "my.yaml")
    message = str(err.value)
    assert message.startswith(f"profile my.yaml: {key}: ") and "or declare RBAC-3 in not_applicable" in message, message
    data["not_applicable"] = {"RBAC-3": "roles here are changed only by a release"}
    assert parse_profile(data, "my.yaml").not_applicable == {"RBAC-3": "roles here are changed only by a release"}


def test_permissive_namespace_labels_are_string_labels():
    data = default_data()
    data["admission"]["permissive_namespace_labels"] = {"policy.example.com/exempt": "true"}
    assert parse_profile(data).permissive_labels == {"policy.example.com/exempt": "true"}
    data["admission"]["permissive_namespace_labels"] = {"policy.example.com/exempt": True}
    with pytest.raises(ProfileError, match="admission.permissive_namespace_labels.policy.example.com/exempt"):
        parse_profile(data)


@pytest.mark.parametrize("mutate,key", [
    (lambda e: e.update(questions=[]), "escalation.questions"),
    (lambda e: e.update(questions=["get secrets", "get secrets in tenant"]), "escalation.questions[1]"),
    (lambda e: e["subjects"].pop("anonymous"), "escalation.subjects.anonymous"),
    (lambda e: e["subjects"].update(robots=[]), "escalation.subjects.robots"),
    (lambda e: e["subjects"].update(user=["create pods"]), "escalation.subjects.user"),
])
def test_escalation_section_errors_are_one_line(mutate, key):
    data = yaml.safe_load(default_profile_path().read_text())
    mutate(data["escalation"])
    with pytest.raises(ProfileError) as err:
        parse_profile(data, "my.yaml")
    assert str(err.value).startswith(f"profile my.yaml: {key}: ") and "\n" not in str(err.value)


def test_escalation_lists_every_subject_class_and_may_be_left_out():
    escalation = load_profile().escalation
    assert set(escalation.granted) == {"user", "service_accounts", "default_service_accounts", "authenticated", "anonymous"}
    assert {c.scope for c in escalation.questions} == {"any", "other", "cluster"}
    data = yaml.safe_load(default_profile_path().read_text())
    del data["escalation"]
    assert parse_profile(data).escalation is None
