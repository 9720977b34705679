"""A user's own test file, on the real local cluster, using the public fixtures: namespaces, can-i and admission."""

from __future__ import annotations

import json


def test_a_users_own_tests_use_the_public_fixtures(suite, pytester):
    pytester.makepyfile(test_mine="""
        def test_ci_may_not_read_secrets_in_prod(k8s_namespace, k8s_can_i):
            prod = k8s_namespace("prod")
            assert not k8s_can_i("get", "secrets", namespace=prod, user="ci", groups=["ci"])
            assert k8s_can_i("get", "secrets", namespace=prod, user="admin", groups=["system:masters"])

        def test_users_made_by_impersonation_and_by_certificate(k8s_namespace, k8s_make_user):
            from kubernetes import client
            from pytest_k8ssec.users import whoami
            ns = k8s_namespace("team")
            for api in (k8s_make_user("alice", groups=["team"]), k8s_make_user("Bob:CI", groups=["ci"], certificate=True)):
                user, groups = whoami(api)
                assert user in ("alice", "Bob:CI") and ("team" in groups or "ci" in groups), (user, groups)
                try:
                    client.CoreV1Api(api).list_namespaced_secret(ns)
                    raise AssertionError(f"{user} may list secrets in {ns}")
                except client.ApiException as exc:
                    assert exc.status == 403, exc

        def test_a_privileged_pod_is_refused_where_restricted_is_enforced(k8s_namespace, k8s_admit):
            ns = k8s_namespace("payments", labels={"pod-security.kubernetes.io/enforce": "restricted"})
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
                   "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
            answer = k8s_admit(pod)
            assert not answer.admitted and answer.mechanism == "Pod Security admission", answer
    """)
    result = suite("test_mine.py", "-v", "--k8s-sec-report=report")
    result.stdout.fnmatch_lines(["*test_ci_may_not_read_secrets_in_prod PASSED*",
                                 "*test_users_made_by_impersonation_and_by_certificate PASSED*",
                                 "*test_a_privileged_pod_is_refused_where_restricted_is_enforced PASSED*"])
    # unmarked: in the report with their evidence, counted in no verdict (none is required: nothing observed)
    data = json.loads((pytester.path / "report/k8s-sec-report.json").read_text())
    assert {(c["case"], c["behaviour"], c["verdict"]) for c in data["cases"]} == {
        ("test_ci_may_not_read_secrets_in_prod", "", "pass"),
        ("test_users_made_by_impersonation_and_by_certificate", "", "pass"),
        ("test_a_privileged_pod_is_refused_where_restricted_is_enforced", "", "pass")}
    result.stdout.fnmatch_lines(["*NOT CERTIFIED: no behaviour was required: mark your tests with IDs declared*"])
    assert "| (unmarked) | `test_ci_may_not_read_secrets_in_prod` | SubjectAccessReview | **pass** |" in \
        (pytester.path / "report/k8s-sec-report.md").read_text()
