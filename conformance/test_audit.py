"""Audit (seed 000, section 2): the API server records what the audit policy says, and nothing else."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8ssec.audit import AuditSource, Expected, judge, tagged
from pytest_k8ssec.kube import api_client
from pytest_k8ssec.pods import non_root_pod
from pytest_k8ssec.users import whoami
from pytest_k8ssec.waits import WaitTimeout, wait_counting


def _status(call, *args, **kwargs) -> int:
    """Make a request (a ``*_with_http_info`` method) and return the HTTP status the server really sent.

    Success is not always 200: the log of a pod not yet on a node is 204 No Content.
    """
    try:
        return call(*args, **kwargs)[1]
    except ApiException as exc:
        return exc.status


@pytest.mark.behaviour("AUDIT-1")
def test_audit_log_records_covered_requests_only(k8s_cluster, k8s_run, k8s_admin, tenancy, k8s_evidence):
    source = AuditSource(k8s_cluster)
    if not source.available:
        if k8s_cluster.created_by_plugin or k8s_cluster.audit_log or k8s_cluster.audit_log_command:
            pytest.fail(f"no audit log where one must be: {source.why_unavailable()}", pytrace=False)
        pytest.skip(source.why_unavailable())
    k8s_evidence["mechanism"] = f"audit.k8s.io/v1 log at {k8s_cluster.audit_log or k8s_cluster.audit_log_command}"
    agent = f"k8ssec-audit/{k8s_run.id}-{secrets.token_hex(3)}"
    api = api_client(str(k8s_cluster.kubeconfig), k8s_cluster.context)
    api.user_agent = agent
    core = client.CoreV1Api(api)
    user, _ = whoami(k8s_admin)
    ns, name = tenancy.tenant, k8s_run.name("audited")
    start = source.mark()

    core.create_namespaced_pod(ns, non_root_pod(name, ns, k8s_cluster.images))
    expected = [Expected("create", "pods", "", ns, 201, "Metadata")]
    expected.append(Expected("get", "pods", "status", ns, _status(core.read_namespaced_pod_status_with_http_info, name, ns), "Metadata"))
    expected.append(Expected("get", "pods", "log", ns, _status(core.read_namespaced_pod_log_with_http_info, name, ns), "Metadata"))
    expected.append(Expected("list", "configmaps", "", ns, _status(core.list_namespaced_config_map_with_http_info, ns), None))
    expected.append(Expected("get", "pods", "", ns, _status(core.read_namespaced_pod_with_http_info, name, ns), None))
    expected.append(Expected("delete", "pods", "", ns, _status(core.delete_namespaced_pod_with_http_info, name, ns, grace_period_seconds=0), "Metadata"))

    def verdict():
        return judge(tagged(source.events(start), agent), expected, user, exact=k8s_cluster.created_by_plugin)

    try:
        result, attempts = wait_counting("the covered requests to appear in the audit log", verdict,
                                         timeout=30, ready=lambda v: not v.missing)
    except WaitTimeout:
        result, attempts = verdict(), -1
    k8s_evidence["requests"] = len(expected)
    k8s_evidence["attempts"] = attempts
    assert result.ok, result.render()
