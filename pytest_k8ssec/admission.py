"""Admission per server version (VERSION-1): Pod Security Admission, and service-account gating.

PodSecurityPolicy is gone from 1.25. Its heart, "a pod is admitted only if its service account
may `use` a policy that allows it", is rebuilt with a ValidatingAdmissionPolicy whose CEL asks
RBAC (`authorizer.serviceAccount(...).check('use')`). The same RBAC grant, `use` on a
podsecuritypolicies name in group policy, therefore means the same thing on PSP and VAP clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from kubernetes import client
from kubernetes.client.rest import ApiException

from . import rbac
from .handle import Images
from .access import impersonating
from .answers import Answer, ask, mechanisms
from .kube import dynamic_client
from .pods import non_root_pod, pod, privileged_pod
from .profile import PSA_LEVELS
from .run import Run
from .waits import WaitTimeout, wait_for

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
GATE_LABEL = "k8ssec.io/sa-gate"
REJECTED_MESSAGE = "unable to validate against any pod security policy"

ALLOWED_VOLUMES = ["configMap", "emptyDir", "projected", "secret", "downwardAPI", "persistentVolumeClaim"]


@dataclass(frozen=True)
class ServedAPIs:
    """The admission APIs this server serves, read from discovery: facts of the server, not of its version number."""

    minor: int
    psp: bool
    vap: bool


def detect(api: client.ApiClient, minor: int) -> ServedAPIs:
    """Which policy APIs discovery lists (PodSecurityPolicy, ValidatingAdmissionPolicy)."""
    resources = dynamic_client(api).resources

    def served(group: str, version: str, resource: str) -> bool:
        return bool(resources.search(group=group, api_version=version, name=resource))

    return ServedAPIs(minor=minor, psp=served("policy", "v1beta1", "podsecuritypolicies"),
                      vap=served("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies"))


def is_privileged(pod: Any) -> bool:
    """A pod on the host network or with a privileged container: what Pod Security baseline refuses."""
    containers = [*(pod.spec.init_containers or []), *pod.spec.containers]
    return bool(pod.spec.host_network) or any(c.security_context and c.security_context.privileged for c in containers)


def workloads_short_of_pods(api: client.ApiClient, namespace: str) -> list[str]:
    """DaemonSets and Deployments with fewer ready pods than they want, each with its last FailedCreate message."""
    apps = client.AppsV1Api(api)
    wanted = [("DaemonSet", d.metadata.name, d.status.desired_number_scheduled or 0, d.status.number_ready or 0)
              for d in apps.list_namespaced_daemon_set(namespace).items]
    wanted += [("Deployment", d.metadata.name, d.spec.replicas or 0, d.status.ready_replicas or 0)
               for d in apps.list_namespaced_deployment(namespace).items]
    short = [(kind, name, want, ready) for kind, name, want, ready in wanted if ready < want]
    if not short:
        return []
    failures = {}  # a Deployment's pods are created by its ReplicaSets, named after it
    for event in client.CoreV1Api(api).list_namespaced_event(namespace).items:
        if event.reason == "FailedCreate":
            failures[(event.involved_object.kind, event.involved_object.name)] = event.message or ""
    def why(kind: str, name: str) -> str:
        found = [m for (k, n), m in failures.items() if n == name or (kind == "Deployment" and n.startswith(f"{name}-"))]
        return f" (FailedCreate: {found[-1]})" if found else ""
    return [f"{kind} {name}: {ready}/{want} ready{why(kind, name)}" for kind, name, want, ready in short]


def psa_labels(level: str) -> dict[str, str]:
    return {PSA_ENFORCE: level, f"{PSA_ENFORCE}-version": "latest"}


def admit(core: client.CoreV1Api, manifest: dict[str, Any]) -> Answer:
    """Ask admission about a pod with a server-side dry-run: admitted, or refused and by what."""
    return ask(lambda: core.create_namespaced_pod(manifest["metadata"]["namespace"], manifest, dry_run="All"))


def admit_as(admin: client.ApiClient, manifest: dict[str, Any], user: str | None = None,
             groups: Sequence[str] = ()) -> Answer:
    """`admit`, asked as `user` and `groups` by impersonation when a user is given ("" for a group alone), else as
    the run's own identity."""
    return admit(client.CoreV1Api(impersonating(admin, user, list(groups)) if user is not None else admin), manifest)


def admit_ephemeral(core: client.CoreV1Api, namespace: str, pod_name: str, container: dict[str, Any]) -> Answer:
    """Ask admission about adding an ephemeral container to a running pod (an UPDATE of pods/ephemeralcontainers)."""
    body = {"spec": {"ephemeralContainers": [container]}}
    return ask(lambda: core.patch_namespaced_pod_ephemeralcontainers(pod_name, namespace, body, dry_run="All"))


def level_probes(namespace: str, images: Images) -> dict[str, tuple[str, dict[str, Any]]]:
    """Probe pods by name: the weakest Pod Security level each needs, and its manifest.

    Each pod but the seeds' escape breaks one control only and is restricted-compliant
    otherwise, so whatever enforces the levels (Pod Security admission, a policy engine) is
    measured control by control, and a rule missing from an engine shows.
    """
    host_network = non_root_pod(pod_name("host-network"), namespace, images)
    host_network["spec"]["hostNetwork"] = True
    host_path = non_root_pod(pod_name("host-path"), namespace, images)
    host_path["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    host_path["spec"]["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host", "readOnly": True}]
    return {
        "restricted": ("restricted", non_root_pod(pod_name("restricted"), namespace, images)),
        "baseline": ("baseline", pod(pod_name("baseline"), namespace, images)),  # root, keeps its capabilities
        "privileged": ("privileged", privileged_pod(pod_name("privileged"), namespace, images)),
        "host-network": ("privileged", host_network),
        "host-path": ("privileged", host_path),
    }


@dataclass(frozen=True)
class Level:
    """The Pod Security level a namespace really enforces, read from what admission does with the probe pods."""

    namespace: str
    level: str | None                  # None: even the restricted-compliant pod was refused
    answers: dict[str, Answer]         # probe -> what admission did with it
    needs: dict[str, str]              # probe -> the weakest level that admits it

    @classmethod
    def read(cls, namespace: str, answers: dict[str, Answer], needs: dict[str, str]) -> "Level":
        """The weakest level an admitted probe needs; None when the restricted-compliant pod was refused."""
        if answers["restricted"].refused:
            return cls(namespace, None, answers, needs)
        admitted = {needs[probe] for probe, answer in answers.items() if answer.admitted}
        return cls(namespace, next(lvl for lvl in PSA_LEVELS if lvl in admitted), answers, needs)

    def at_least(self, required: str) -> bool:
        return self.level is not None and PSA_LEVELS.index(self.level) >= PSA_LEVELS.index(required)

    def offenders(self, required: str) -> list[str]:
        """The admitted probes a namespace enforcing `required` would refuse."""
        return [probe for probe, answer in self.answers.items()
                if answer.admitted and PSA_LEVELS.index(self.needs[probe]) < PSA_LEVELS.index(required)]

    def refused_by(self) -> str:
        return mechanisms(list(self.answers.values()))

    def explain(self, required: str, who: str) -> str:
        if self.level is None:
            return (f"no verdict in {self.namespace}: even the restricted-compliant pod was refused to {who} "
                    f"({self.answers['restricted'].describe()}: {self.answers['restricted'].message}), "
                    "so a refusal says nothing about the level")
        admitted = [f"the {probe} probe pod {pod_name(probe)!r}" for probe in self.offenders(required)]
        return (f"in namespace {self.namespace} {who} was admitted {' and '.join(admitted)}: it enforces {self.level}, "
                f"the profile requires at least {required}")


def pod_name(probe: str) -> str:
    return f"k8ssec-level-{probe}"


def enforced_level(core: client.CoreV1Api, namespace: str, images: Images) -> Level:
    """Dry-run the probe pods; the level is the strictest one that refuses every probe it should.

    The restricted-compliant pod is the positive control: if it is refused, the identity cannot
    create pods there at all, and nothing can be said about the level.
    """
    probes = level_probes(namespace, images)
    return Level.read(namespace, {name: admit(core, manifest) for name, (_, manifest) in probes.items()},
                      {name: needed for name, (needed, _) in probes.items()})


# CEL: the pod satisfies the seeds' `restricted` policy. Ephemeral containers are another type
# in the schema, so their list is checked apart rather than concatenated with the others.
_CONTAINER_LISTS = ["((has(object.spec.initContainers) ? object.spec.initContainers : []) + object.spec.containers)",
                    "(has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])"]
_EACH_CONTAINER = [
    "!(has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged)",
    "has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false",
    "has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && c.securityContext.capabilities.drop.exists(d, d == 'ALL')",
    "!(has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.add) && size(c.securityContext.capabilities.add) > 0)",
    "!(has(c.securityContext) && has(c.securityContext.runAsUser) && c.securityContext.runAsUser == 0)",
    "(has(c.securityContext) && has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot) || (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot)",
]
RESTRICTED_CEL = " && ".join(f"({clause})" for clause in [
    "!(has(object.spec.hostNetwork) && object.spec.hostNetwork)",
    "!(has(object.spec.hostPID) && object.spec.hostPID)",
    "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
    *(f"{containers}.all(c, {check})" for containers in _CONTAINER_LISTS for check in _EACH_CONTAINER),
    "!(has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) && object.spec.securityContext.runAsUser == 0)",
    "!has(object.spec.volumes) || object.spec.volumes.all(v, " + " || ".join(f"has(v.{t})" for t in ALLOWED_VOLUMES) + ")",
    "!(has(object.spec.securityContext) && has(object.spec.securityContext.fsGroup)) || (object.spec.securityContext.fsGroup >= 1 && object.spec.securityContext.fsGroup <= 65535)",
    "!(has(object.spec.securityContext) && has(object.spec.securityContext.supplementalGroups)) || object.spec.securityContext.supplementalGroups.all(g, g >= 1 && g <= 65535)",
])


def _may_use(policy: str) -> str:
    return (f"authorizer.serviceAccount(request.namespace, variables.sa).group('policy')"
            f".resource('podsecuritypolicies').namespace(request.namespace).name('{policy}').check('use').allowed()")


def gating_policy(name: str, gate: str, restricted: str, permissive: str) -> dict[str, Any]:
    """A VAP admitting a pod if its service account may `use` `permissive`, or `restricted` and it complies.

    Only namespaces labelled GATE_LABEL=gate are matched, so a run never affects anything but its own.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {GATE_LABEL: gate}},
                # UPDATE too: ephemeral containers are added to a running pod through pods/ephemeralcontainers
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                   "resources": ["pods", "pods/ephemeralcontainers"]}],
            },
            "variables": [
                {"name": "sa", "expression": "has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' "
                                             "? object.spec.serviceAccountName : 'default'"},
                {"name": "permissive", "expression": _may_use(permissive)},
                {"name": "restricted", "expression": _may_use(restricted)},
                {"name": "complies", "expression": RESTRICTED_CEL},
            ],
            "validations": [{
                "expression": "variables.permissive || (variables.restricted && variables.complies)",
                # Kept to plain concatenation: a messageExpression that fails to evaluate is silently
                # replaced by the failed expression's text.
                "messageExpression": f"'{REJECTED_MESSAGE}: service account ' + variables.sa + ' may use no policy that allows this pod'",
                "reason": "Forbidden",
            }],
        },
    }


def gating_binding(name: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy, "validationActions": ["Deny"]},
    }


@dataclass
class Gate:
    """A namespace whose pods are gated on their service account's `use` of a named policy."""

    namespace: str
    policy: str          # the gate's ValidatingAdmissionPolicy: a refusal is the gate's when it names it
    restricted: str
    permissive: str
    use_restricted: str = "use-restricted"
    use_permissive: str = "use-permissive"

    def refused(self, answer: Answer) -> bool:
        """Whether the gate itself refused (another policy in front of it may refuse first)."""
        return answer.refused and answer.policy == self.policy

    def wait_active(self, core: client.CoreV1Api, images: Images) -> None:
        """A new VAP takes effect once the API server has loaded it: wait until the gate refuses a probe pod.

        The probe is restricted-compliant and its service account may use nothing, so only the gate
        has a reason to refuse it; another policy's refusal proves nothing about the gate. If the
        gate never answers, the cases go on and fail on what they observe, which is the behaviour broken.
        """
        probe = non_root_pod("gate-probe", self.namespace, images)
        try:
            wait_for(f"the gating policy {self.policy} to refuse a restricted-compliant pod in {self.namespace}",
                     lambda: admit(core, probe), timeout=20, ready=self.refused)
        except WaitTimeout:
            pass

    def grant(self, run: Run, account: str, use_role: str, until_admitted: dict[str, Any] | None = None) -> Answer | None:
        """Create a service account in the gated namespace (once) and let it use a policy through `use_role`.

        RBAC grants reach the admission authorizer after a short delay: with `until_admitted`,
        wait until the gate no longer refuses that pod (a dry run), and return its answer: admitted,
        or refused by another policy in front of the gate.
        """
        core = client.CoreV1Api(run.api)
        present = {sa.metadata.name for sa in core.list_namespaced_service_account(self.namespace).items}
        if account not in present:
            core.create_namespaced_service_account(self.namespace, {"metadata": {"name": account},
                                                                    "automountServiceAccountToken": False})
            run.create(rbac.binding(f"{account}-may-use", "Role", use_role,
                                    [rbac.service_account(account, self.namespace)], self.namespace))
        if not until_admitted:
            return None
        return wait_for(f"the grant of {use_role} to {account} to let pod {until_admitted['metadata']['name']} past the gate",
                        lambda: admit(core, until_admitted), timeout=30, ready=lambda a: not self.refused(a))


def make_gate(run: Run, base: str) -> Gate:
    """A gated namespace of the run, its ValidatingAdmissionPolicy and binding, and a role per policy to `use`."""
    gate_value = f"{run.id}-{base}"
    # baseline, not privileged: policy engines and managed clusters forbid the privileged label, and
    # the gate's cases need only what baseline allows and restricted does not (root, capabilities).
    ns = run.namespace(base, {GATE_LABEL: gate_value, **psa_labels("baseline")})
    policy = run.name(f"sa-gate-{base}")
    gate = Gate(ns, policy, run.name("restricted"), run.name("permissive"))
    run.create(gating_policy(policy, gate_value, gate.restricted, gate.permissive))
    run.create(gating_binding(policy, policy))
    run.create(rbac.role(gate.use_restricted, [rbac.use_rule(gate.restricted)], ns))
    run.create(rbac.role(gate.use_permissive, [rbac.use_rule(gate.permissive)], ns))
    return gate


def create_gated_controllers(run: Run, gate: Gate, images: Images) -> None:
    """A ReplicationController `rc` and a Deployment `dep` in the gated namespace, one non-root replica each."""
    template = non_root_pod("x", gate.namespace, images, labels={"app": "gated"})
    template.pop("apiVersion"), template.pop("kind")
    template["metadata"] = {"labels": {"app": "gated"}}
    run.create({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc", "namespace": gate.namespace},
                "spec": {"replicas": 1, "selector": {"app": "gated"}, "template": template}})
    dep_template = {**template, "metadata": {"labels": {"app": "gated-dep"}}}
    run.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep", "namespace": gate.namespace},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "gated-dep"}}, "template": dep_template}})


def failed_create(core: client.CoreV1Api, ns: str, kind: str) -> str:
    """The admission message of a FailedCreate event for the kind's controller-owned object."""
    for event in core.list_namespaced_event(ns).items:
        if event.reason == "FailedCreate" and event.involved_object.kind == kind:
            return event.message or ""
    return ""


def pod_names(core: client.CoreV1Api, ns: str) -> list[str]:
    return [p.metadata.name for p in core.list_namespaced_pod(ns).items]


def replica_failure(api: client.ApiClient, ns: str, kind: str) -> bool:
    """Whether the ReplicationController `rc`, or the ReplicaSets of a Deployment, report ReplicaFailure."""
    if kind == "ReplicationController":
        conditions = client.CoreV1Api(api).read_namespaced_replication_controller("rc", ns).status.conditions
    else:
        sets = client.AppsV1Api(api).list_namespaced_replica_set(ns).items
        conditions = [c for rs in sets for c in (rs.status.conditions or [])]
    return any(c.type == "ReplicaFailure" and c.status == "True" for c in conditions or [])


def in_force(api: client.ApiClient, namespace: str) -> str:
    """What could have refused a pod in a namespace and did not: its Pod Security labels, the admission
    policies bound and the validating webhooks (each read as far as the identity may)."""
    parts = []
    try:
        labels = client.CoreV1Api(api).read_namespace(namespace).metadata.labels or {}
        psa = {k.rsplit("/", 1)[1]: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
        parts.append(f"namespace {namespace} Pod Security labels {psa or 'none'}")
    except ApiException:
        parts.append(f"namespace {namespace}: labels unreadable")
    reg = client.AdmissionregistrationV1Api(api)
    for what, lister in (("ValidatingAdmissionPolicyBindings", reg.list_validating_admission_policy_binding),
                         ("validating webhooks", reg.list_validating_webhook_configuration)):
        try:
            names = [item.metadata.name for item in lister().items]
            parts.append(f"{what}: {', '.join(names) or 'none'}")
        except ApiException:
            parts.append(f"{what}: unreadable")
    return "; ".join(parts)
