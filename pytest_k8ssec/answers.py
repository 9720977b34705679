"""Admission answers: a pod admitted or refused, and which mechanism refused it.

A case judges by the outcome alone and never by a mechanism's wording: Pod Security admission,
a ValidatingAdmissionPolicy, a policy engine's webhook or anything else may give the refusal.
Who gave it is read from the frame the API server puts around every refusal (the words it
writes for its own admission plugins), so the report can name the mechanism that answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from kubernetes.client.rest import ApiException

POD_SECURITY = "Pod Security admission"
INVALID = "object validation"
UNKNOWN = "unknown"

_VAP = re.compile(r"ValidatingAdmissionPolicy '(?P<policy>[^']+)' with binding '(?P<binding>[^']+)' denied request")
_WEBHOOK = re.compile(r'admission webhook "(?P<name>[^"]+)" denied the request')
_RBAC = re.compile(r'is forbidden: User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"')


@dataclass(frozen=True)
class Answer:
    """What admission did with one pod: admitted, or refused by `mechanism` with `message`."""

    admitted: bool
    message: str = ""
    mechanism: str = ""
    policy: str = ""  # the ValidatingAdmissionPolicy or webhook that refused, when one did

    @property
    def refused(self) -> bool:
        return not self.admitted

    def describe(self) -> str:
        return "admitted" if self.admitted else f"refused by {self.mechanism}"


def attribute(status: int, message: str) -> tuple[str, str]:
    """The mechanism (and policy name) behind a refusal, from the API server's frame around its message."""
    if m := _VAP.search(message):
        return f"ValidatingAdmissionPolicy {m['policy']} (binding {m['binding']})", m["policy"]
    if m := _WEBHOOK.search(message):
        return f"admission webhook {m['name']}", m["name"]
    if "violates PodSecurity" in message:
        return POD_SECURITY, ""
    if m := _RBAC.search(message):
        return f"RBAC (the identity may not {m['verb']} {m['resource']})", ""
    if status == 422:
        return INVALID, ""
    return f"{UNKNOWN} (HTTP {status})", ""


def status_message(exc: ApiException) -> str:
    """The message of the Status the API server refused a request with (its body as text when it sent none)."""
    try:
        return json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        return str(exc.body)


def ask(request: Callable[[], Any]) -> Answer:
    """Send a dry-run request; a refusal (400, 403, 422) becomes an attributed Answer, anything else raises."""
    try:
        request()
        return Answer(True)
    except ApiException as exc:
        if exc.status not in (400, 403, 422):
            raise
        message = status_message(exc)
        mechanism, policy = attribute(exc.status, message)
        return Answer(False, message, mechanism, policy)


def mechanisms(answers: list[Answer]) -> str:
    """The distinct mechanisms that refused, for the evidence: 'Pod Security admission; ValidatingAdmissionPolicy x ...'."""
    return "; ".join(dict.fromkeys(a.mechanism for a in answers if a.refused)) or "none refused"
