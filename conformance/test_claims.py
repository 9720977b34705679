"""The user's own claims (--k8s-sec-claims): one case per claim, counted under the claim's own ID.

Reachability claims probe the user's real pods and Services from probe pods standing for the
source (`claimprobe`), which needs --k8s-sec-allow-probe-pods; can-i claims ask the authorizer
(SubjectAccessReview); admission claims ask by server-side dry run, nothing created. A failure
names the claim, the cell or the question, and what answered: the policies in force, the
binding that grants, the mechanism that admitted.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from pytest_k8ssec import admission
from pytest_k8ssec.access import ask_can_i
from pytest_k8ssec.answers import INVALID
from pytest_k8ssec.claimprobe import Observed, ProbeLab, observe, policies_in_force
from pytest_k8ssec.claims import Admission, CanI, Claim, Reach
from pytest_k8ssec.escalation import read_rbac
from pytest_k8ssec.grants import Subject as RbacSubject
from pytest_k8ssec.runconfig import RUN_CONFIG, RunConfig


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim" in metafunc.fixturenames:
        claims = metafunc.config.stash[RUN_CONFIG].claims
        metafunc.parametrize("claim", [pytest.param(c, id=c.id, marks=pytest.mark.behaviour(c.id)) for c in claims.claims])


@pytest.fixture(scope="session")
def observed(k8s_session: RunConfig, k8s_admin: client.ApiClient, _k8s_probe_lab: ProbeLab) -> Observed:
    """Every reachability claim of the file and its positive control, observed together."""
    return observe(_k8s_probe_lab, client.CoreV1Api(k8s_admin), k8s_session.claims.reachability)


def test_claim(claim: Claim, request: pytest.FixtureRequest, k8s_admin: client.ApiClient, k8s_evidence: dict[str, Any],
               k8s_run: Any) -> None:
    """The claim holds on the cluster as it is."""
    k8s_evidence["claim"] = claim.check.describe()
    if isinstance(claim.check, Reach):
        _reach(claim, request.getfixturevalue("observed"), k8s_admin, k8s_evidence)
    elif isinstance(claim.check, CanI):
        _can_i(claim, claim.check, k8s_admin, k8s_evidence)
    else:
        _admit(claim, claim.check, k8s_admin, k8s_evidence)


def _reach(claim: Claim, observed: Observed, admin: client.ApiClient, evidence: dict[str, Any]) -> None:
    judgement = observed.judge(claim, f"{claim.id} ({claim.title})", policies_in_force(admin))
    evidence.update(judgement.evidence)
    judgement.settle()


def _can_i(claim: Claim, can: CanI, admin: client.ApiClient, evidence: dict[str, Any]) -> None:
    subject = can.subject
    q, yes = ask_can_i(admin, can.verb, can.resource, can.namespace or None, subject.user, subject.groups)
    evidence["mechanism"] = "SubjectAccessReview"
    evidence["answer"] = f"{subject} {q.label} in {can.namespace or 'the cluster'}: {'yes' if yes else 'no'}"
    if yes == can.allowed:
        return
    if yes:
        grants = read_rbac(admin).grants(q, RbacSubject(subject.user, subject.groups))
        why = "; ".join(map(str, grants)) or "no RBAC binding: another authorizer answered yes"
        pytest.fail(f"{claim.id}: {subject} may {q.label} in {can.namespace or 'the cluster'}: {why}")
    pytest.fail(f"{claim.id}: {subject} may not {q.label} in {can.namespace or 'the cluster'} (the claim says yes): "
                "no binding grants it")


def _admit(claim: Claim, adm: Admission, admin: client.ApiClient, evidence: dict[str, Any]) -> None:
    subject = adm.subject
    answer = admission.admit_as(admin, adm.pod, subject.user if subject else None, subject.groups if subject else ())
    evidence["mechanism"] = answer.mechanism or "admitted by every admission mechanism in force"
    evidence["answer"] = answer.describe()
    if answer.refused and (answer.mechanism.startswith("RBAC") or answer.mechanism == INVALID):
        pytest.skip(f"not observed: {answer.describe()} before admission judged the pod ({answer.message[:200]}): "
                    "ask as a subject that may create pods there, with a valid pod")
    if answer.admitted == adm.admitted:
        return
    if answer.admitted:
        pytest.fail(f"{claim.id}: pod {adm.pod['metadata']['name']} was admitted in {adm.namespace} "
                    f"(the claim says refused): admitted with {admission.in_force(admin, adm.namespace)}")
    pytest.fail(f"{claim.id}: pod {adm.pod['metadata']['name']} was refused in {adm.namespace} by {answer.describe()}")
