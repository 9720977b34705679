"""SecurityContext and admission (seed 000, sections 4-5; seed 004): PRIV, PSP, EXC, VERIFY, VERSION.

Admission answers are checked with server-side dry-run where that is enough; controllers and
the kubelet are checked with real objects.
"""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from pytest_k8ssec import admission as adm
from pytest_k8ssec import rbac
from pytest_k8ssec import rights
from pytest_k8ssec.answers import Answer, attribute
from pytest_k8ssec.access import Question, await_grant, impersonated_can_i, impersonating, subject_can_i
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.fixtures import require_cluster_changes
from pytest_k8ssec.pods import (RESTRICTED_CONTAINER, create_and_wait_running, exec_in, is_ready, non_root_pod, pod,
                                privileged_pod, root_image_pod, waiting_reason)
from pytest_k8ssec.waits import wait_counting, wait_for

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights


@pytest.fixture(scope="module")
def apis(k8s_admin, k8s_cluster) -> adm.ServedAPIs:
    return adm.detect(k8s_admin, k8s_cluster.server_version[1])


@pytest.fixture(scope="module")
def core(k8s_admin) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_admin)


@pytest.fixture(scope="module")
def hardened(k8s_run, k8s_profile) -> str:
    """A tenant namespace hardened with Pod Security Admission at the profile's level."""
    return k8s_run.namespace("hardened", adm.psa_labels(k8s_profile.tenant_level))


@pytest.fixture(scope="module")
def unenforced(k8s_run, k8s_profile) -> str:
    """A namespace where privileged pods are allowed: Pod Security's label, and the profile's exemption for its engine."""
    return k8s_run.namespace("unenforced", {**adm.psa_labels("privileged"), **k8s_profile.permissive_labels})


def _gate(k8s_run, k8s_cluster, apis, base: str) -> adm.Gate:
    require_cluster_changes(k8s_cluster, "service-account gating (a ValidatingAdmissionPolicy)")
    if not apis.vap:
        pytest.skip(f"this cluster (1.{apis.minor}) serves no ValidatingAdmissionPolicy API")
    gate = adm.make_gate(k8s_run, base)
    gate.wait_active(client.CoreV1Api(k8s_run.api), k8s_cluster.images)
    return gate


@pytest.fixture(scope="module")
def gate(k8s_run, k8s_cluster, apis) -> adm.Gate:
    return _gate(k8s_run, k8s_cluster, apis, "gated")


def _stricter(answer, where: str, what: str) -> None:
    """A half of a claim that needs a pod admitted, on a cluster that refuses it: stricter than the claim."""
    said = answer.message.splitlines()[0][:200] if answer.message else "no message"
    not_applicable(f"{what} is refused in {where} by {answer.mechanism}: stricter than the claim ({said})")


@behaviour("VERSION-1")
def test_mechanisms_are_named_from_answers_and_discovery(apis, core, hardened, k8s_cluster, k8s_evidence):
    """The report names what enforces pod security here: the mechanism that refused the seeds' escape pod, and
    the policy APIs discovery lists. Nothing is inferred from the version number alone."""
    answer = adm.admit(core, privileged_pod("escape", hardened, k8s_cluster.images))
    served = [name for name, on in (("PodSecurityPolicy", apis.psp), ("ValidatingAdmissionPolicy", apis.vap)) if on]
    k8s_evidence["mechanism"] = (f"escape pod {answer.describe()}; policy APIs discovery lists: "
                                 f"{', '.join(served) or 'none'}")
    k8s_evidence["server"] = k8s_cluster.git_version
    if apis.minor >= 25:
        assert not apis.psp, f"discovery lists PodSecurityPolicy on Kubernetes 1.{apis.minor}, where it no longer exists"


@behaviour("PRIV-1")
@needs(rights.EXEC, rights.GET_NODES)
def test_privileged_pod_without_enforcement_sees_node_network(k8s_run, k8s_admin, core, unenforced, k8s_cluster,
                                                              k8s_profile, k8s_evidence):
    """Without enforcement, a privileged hostNetwork pod is admitted and sees the node's addresses.

    A cluster that refuses the pod even where nothing asks it to is stricter than the claim: this
    half is then not applicable, and PRIV-1 rests on its refusals.
    """
    k8s_evidence["mechanism"] = "namespace labelled pod-security enforce=privileged" + (
        f" and {k8s_profile.permissive_labels}" if k8s_profile.permissive_labels else "")
    escape = privileged_pod("escape", unenforced, k8s_cluster.images)
    answer = adm.admit(core, escape)
    k8s_evidence["answered by"] = answer.describe()
    if answer.refused:
        _stricter(answer, f"{unenforced}, labelled to allow it", "the privileged hostNetwork pod")
    running = create_and_wait_running(core, escape)
    node = core.read_node(running.spec.node_name)
    node_ips = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    code, out = exec_in(k8s_admin, unenforced, "escape", ["ip", "-o", "addr"])
    assert code == 0, f"`ip -o addr` in the privileged pod failed ({code}): {out}"
    k8s_evidence["node addresses seen"] = ", ".join(ip for ip in node_ips if ip in out)
    assert any(ip in out for ip in node_ips), f"the hostNetwork pod does not see the node's address {node_ips}:\n{out}"


@behaviour("PRIV-1")
def test_privileged_pod_rejected_on_hardened_namespace(core, hardened, k8s_cluster, k8s_profile, k8s_evidence):
    """On a hardened namespace the same pod is refused, by whatever enforces pod security there."""
    answer = adm.admit(core, privileged_pod("escape", hardened, k8s_cluster.images))
    if answer.admitted and not k8s_profile.admission_enforced:
        not_applicable("the profile says this cluster does not enforce pod security (admission.enforced: false)")
    k8s_evidence["mechanism"] = f"{answer.describe()} (dry-run in a namespace labelled enforce={k8s_profile.tenant_level})"
    assert answer.refused, (f"a privileged hostNetwork pod was admitted in namespace {hardened} "
                            f"(labelled enforce={k8s_profile.tenant_level}): no admission mechanism refused it")
    k8s_evidence["message"] = answer.message


@pytest.fixture(scope="module")
def unlabelled(k8s_run, tenancy, k8s_admin, k8s_profile) -> str:
    """A namespace with no Pod Security labels, where the developers may create pods as in the tenant."""
    ns = k8s_run.namespace("unlabelled")
    role_name = tenancy.role_name
    if tenancy.role_kind == "Role":  # a Role lives in the tenant namespace: this one gets a copy
        role_name = "developer"
        k8s_run.create(rbac.role(role_name, tenancy.rules, ns))
    k8s_run.create(rbac.binding("developers", tenancy.role_kind, role_name, [rbac.group(tenancy.group)], ns))
    await_grant(k8s_admin, Question("create", "", "pods", namespace=ns), k8s_profile.user_name, k8s_profile.user_groups,
                f"the developers' binding in {ns}")
    return ns


@behaviour("PRIV-1")
@needs(*rights.IMPERSONATE)
def test_privileged_pod_rejected_where_nobody_labelled_the_namespace(unlabelled, k8s_admin, k8s_profile, k8s_cluster,
                                                                     k8s_evidence):
    """What a tenant really gets: the seeds' escape pod, created as the user in a namespace nobody labelled."""
    required = k8s_profile.default_level
    if required is None:
        not_applicable("the profile makes no claim on namespaces nobody labelled (admission.default_level)")
    who = f"the user {k8s_profile.user_name} (impersonated, groups {', '.join(k8s_profile.user_groups)})"
    as_tenant = impersonating(k8s_admin, k8s_profile.user_name, k8s_profile.user_groups)
    found = adm.enforced_level(client.CoreV1Api(as_tenant), unlabelled, k8s_cluster.images)
    k8s_evidence["mechanism"] = f"refused by {found.refused_by()} (dry-run as the tenant in an unlabelled namespace)"
    k8s_evidence["observed"] = f"{found.level} in {unlabelled}"
    assert found.at_least(required), found.explain(required, who)


@behaviour("PRIV-1")
def test_named_namespaces_are_hardened(core, k8s_profile, k8s_cluster, k8s_rights, k8s_evidence):
    """Each existing namespace the profile names enforces at least its level (the owner's labels, or the default)."""
    if not k8s_profile.hardened_namespaces:
        not_applicable("the profile names no existing namespaces to check (admission.hardened_namespaces)")
    k8s_rights.require(*(rights.Right("create", "pods", namespace=ns) for ns in k8s_profile.hardened_namespaces))
    found = {ns: adm.enforced_level(core, ns, k8s_cluster.images) for ns in k8s_profile.hardened_namespaces}
    k8s_evidence["mechanism"] = ("refused by " + "; ".join(f"{ns}: {f.refused_by()}" for ns, f in found.items())
                                 + " (dry-run as the admin in each named namespace)")
    k8s_evidence["observed"] = ", ".join(f"{ns}={f.level}" for ns, f in found.items())
    weak = [f.explain(k8s_profile.hardened_namespaces[ns], "the admin") for ns, f in found.items()
            if not f.at_least(k8s_profile.hardened_namespaces[ns])]
    assert not weak, "\n".join(weak)


@behaviour("PRIV-2")
@needs(*rights.KUBE_SYSTEM_WORKLOADS)
def test_control_plane_privileged_pods_keep_running(core, k8s_admin, k8s_evidence):
    """kube-system's workloads have every pod they want, and its privileged and host-network pods are Ready.

    Looking at existing pods alone would miss the worst case: enforcement that stops a
    DaemonSet from creating its pods leaves no pod to look at.
    """
    short = adm.workloads_short_of_pods(k8s_admin, "kube-system")
    pods = [p for p in core.list_namespaced_pod("kube-system").items if adm.is_privileged(p) and p.status.phase != "Succeeded"]
    if not pods and not short:
        not_applicable("kube-system runs no privileged or host-network pods on this cluster")
    k8s_evidence["mechanism"] = "Pod Security Admission exemption of kube-system; desired vs ready pods"
    k8s_evidence["pods"] = len(pods)
    assert not short, "kube-system workloads lack pods: " + "; ".join(short)
    not_ready = [f"{p.metadata.name}: {p.status.phase} {' '.join(waiting_reason(p)).strip()}".strip()
                 for p in pods if not is_ready(p)]
    assert not not_ready, "privileged control-plane pods are not running: " + ", ".join(not_ready)


def _gate_answer(gate: adm.Gate, answer, what: str) -> None:
    """The gate's own claims need the gate's own refusal: another policy refusing first leaves them unobserved."""
    if answer.refused and not gate.refused(answer):
        pytest.skip(f"{what} was refused by {answer.mechanism} before the gate {gate.policy} answered: "
                    "the gate's own answer was not observed")


@behaviour("PSP-1")
@needs(rights.SUBJECT_ACCESS_REVIEWS)
def test_non_root_pod_rejected_without_authorized_policy(core, gate, k8s_admin, k8s_cluster, k8s_evidence):
    k8s_evidence["mechanism"] = f"the suite's gate (ValidatingAdmissionPolicy {gate.policy}: service account `use` via authorizer)"
    account = f"system:serviceaccount:{gate.namespace}:default"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{gate.namespace}", "system:authenticated"]
    grants = [p for p in (gate.restricted, gate.permissive)
              if subject_can_i(k8s_admin, Question("use", "policy", "podsecuritypolicies", namespace=gate.namespace, name=p),
                               account, groups)]
    assert not grants, (f"{account} (with system:authenticated) may already use {', '.join(grants)}: the cluster grants "
                        "`use` of pod security policies to every service account or every user")
    answer = adm.admit(core, non_root_pod("nonroot", gate.namespace, k8s_cluster.images))
    _gate_answer(gate, answer, "the restricted-compliant non-root pod")
    assert answer.refused, "a pod whose service account may use no policy was admitted"
    k8s_evidence["message"] = answer.message


@behaviour("PSP-2")
def test_restricted_policy_admits_non_root_but_not_privileged_or_root(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    """Refusals count whoever gives them (a policy in front of the gate is stricter, not wrong); each is attributed."""
    images = k8s_cluster.images
    admitted = gate.grant(k8s_run, "app", gate.use_restricted,
                          until_admitted=non_root_pod("nonroot", gate.namespace, images, service_account="app"))
    assert admitted.admitted, (f"the restricted-compliant pod of a service account that may use the restricted policy "
                               f"was refused by {admitted.mechanism}, so refusals prove nothing: {admitted.message}")
    root = non_root_pod("root", gate.namespace, images, service_account="app")
    root["spec"]["securityContext"] = {"runAsUser": 0}
    root["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    capable = non_root_pod("capable", gate.namespace, images, service_account="app")
    capable["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["CHOWN"]  # baseline allows it
    refused = {}
    for label, manifest in (("privileged", privileged_pod("priv", gate.namespace, images, service_account="app")),
                            ("root", root), ("capabilities.add", capable)):
        answer = adm.admit(core, manifest)
        assert answer.refused, f"the {label} pod was admitted under the restricted policy"
        refused[label] = answer.mechanism
    k8s_evidence["mechanism"] = "refused by " + "; ".join(f"{label}: {who}" for label, who in refused.items())


@behaviour("PSP-2")
def test_restricted_policy_covers_ephemeral_containers(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    """A debug container added to a running restricted pod is gated like the pod: root refused, compliant admitted."""
    images = k8s_cluster.images
    target = non_root_pod("debug-target", gate.namespace, images, service_account="app")
    gate.grant(k8s_run, "app", gate.use_restricted, until_admitted=target)
    core.create_namespaced_pod(gate.namespace, target)
    compliant = {"name": "debug", "image": images.busybox_nonroot, "imagePullPolicy": images.pull_policy,
                 "command": ["sh"], "securityContext": copy.deepcopy(RESTRICTED_CONTAINER)}
    answer = adm.admit_ephemeral(core, gate.namespace, "debug-target", compliant)
    assert answer.admitted, (f"a restricted-compliant ephemeral container was refused by {answer.mechanism}, "
                             f"so refusals prove nothing: {answer.message}")
    root = {**compliant, "name": "debug-root", "image": images.busybox, "securityContext": {}}  # baseline allows it
    answer = adm.admit_ephemeral(core, gate.namespace, "debug-target", root)
    assert answer.refused, "a root ephemeral container keeping its capabilities was added under the restricted policy"
    k8s_evidence["mechanism"] = f"{answer.describe()} (UPDATE of pods/ephemeralcontainers)"
    k8s_evidence["message"] = answer.message


@pytest.fixture(scope="module")
def controllers(k8s_run, k8s_cluster, apis) -> adm.Gate:
    """A ReplicationController and a Deployment whose pods' service account may use no policy yet."""
    g = _gate(k8s_run, k8s_cluster, apis, "gated-ctl")
    adm.create_gated_controllers(k8s_run, g, k8s_cluster.images)
    return g


@behaviour("PSP-3")
@pytest.mark.parametrize("kind", ["ReplicationController", "ReplicaSet"])
@needs(rights.EVENTS)
def test_controller_cannot_create_pods_until_service_account_authorized(kind, controllers, core, k8s_admin, k8s_evidence):
    """The user's controller object is accepted, but its pods are refused: ReplicaFailure and FailedCreate."""
    k8s_evidence["mechanism"] = f"the suite's gate (ValidatingAdmissionPolicy {controllers.policy}) on the controller's pods"
    ns = controllers.namespace

    def outcome() -> tuple[str, list[str]]:  # the refusal, or the pods that should not exist
        return adm.failed_create(core, ns, kind), adm.pod_names(core, ns)

    message, owned = wait_for(f"a FailedCreate event for the {kind}, or its pods", outcome, timeout=60,
                              ready=lambda o: bool(o[0] or o[1]))
    assert not owned, f"pods were created although their service account may use no policy: {owned}"
    _gate_answer(controllers, Answer(False, message, *attribute(403, message)), f"the {kind}'s restricted-compliant pod")
    wait_for(f"the {kind}'s ReplicaFailure condition", lambda: adm.replica_failure(k8s_admin, ns, kind), timeout=60)
    owned = adm.pod_names(core, ns)
    assert not owned, f"pods were created although their service account may use no policy: {owned}"
    k8s_evidence["message"] = message


@behaviour("PSP-4")
def test_controller_creates_pods_once_service_accounts_authorized(k8s_run, controllers, core, k8s_admin, k8s_evidence):
    ns = controllers.namespace
    k8s_evidence["mechanism"] = f"RoleBinding of `use` to group system:serviceaccounts:{ns}"
    k8s_run.create(rbac.binding("serviceaccounts-use-restricted", "Role", controllers.use_restricted,
                                [rbac.group(f"system:serviceaccounts:{ns}")], ns))
    # Nudge both controllers so they retry now rather than after their back-off.
    client.CoreV1Api(k8s_admin).patch_namespaced_replication_controller("rc", ns, {"metadata": {"annotations": {"k8ssec.io/nudge": "1"}}})
    client.AppsV1Api(k8s_admin).patch_namespaced_deployment("dep", ns, {"spec": {"template": {"metadata": {"annotations": {"k8ssec.io/nudge": "1"}}}}})

    def running() -> set[str]:
        return {p.metadata.labels.get("app") for p in core.list_namespaced_pod(ns).items if p.status.phase == "Running"}

    seen, attempts = wait_counting("the controllers' pods to run", running, timeout=120, ready=lambda s: {"gated", "gated-dep"} <= s)
    k8s_evidence["attempts"] = attempts


@behaviour("PSP-5")
def test_root_image_under_run_as_non_root_never_starts(core, hardened, k8s_cluster, k8s_evidence):
    """Admitted, but the kubelet refuses to start it: CreateContainerConfigError."""
    k8s_evidence["mechanism"] = "kubelet runAsNonRoot check"
    manifest = root_image_pod("rootimage", hardened, k8s_cluster.images)
    answer = adm.admit(core, manifest)
    if answer.refused:  # a policy that checks the image's user at admission is stricter than the claim
        _stricter(answer, hardened, "the pod whose image runs as root")
    core.create_namespaced_pod(hardened, manifest)

    def state() -> tuple[str, tuple[str, str]]:
        observed = core.read_namespaced_pod("rootimage", hardened)
        return observed.status.phase, waiting_reason(observed)

    phase, reason = wait_for("the kubelet to refuse the root image, or the container to start", state, timeout=60,
                             ready=lambda s: s[0] == "Running" or s[1][0] == "CreateContainerConfigError")
    assert phase != "Running", f"the container of {manifest['spec']['containers'][0]['image']} started under runAsNonRoot"
    assert "runAsNonRoot and image will run as root" in reason[1], reason
    assert core.read_namespaced_pod("rootimage", hardened).status.phase != "Running"
    k8s_evidence["message"] = reason[1]


def _root_pod(gate: adm.Gate, images, account: str | None) -> dict:
    """A root pod keeping its capabilities: it violates restricted, and stays within the namespace's baseline."""
    return pod("root", gate.namespace, images, service_account=account)


@behaviour("EXC-1")
def test_permissive_policy_admits_its_service_account(k8s_run, gate, k8s_cluster, k8s_evidence):
    """The exception holds for the one service account that may use the permissive policy.

    Where another policy refuses the root pod whatever its account, the cluster is stricter than
    the claim: this half is not applicable, and EXC-1 rests on the refusal below.
    """
    k8s_evidence["mechanism"] = "the suite's gate + RBAC `use` of the permissive policy by one service account"
    answer = gate.grant(k8s_run, "privileged-sa", gate.use_permissive,
                        until_admitted=_root_pod(gate, k8s_cluster.images, "privileged-sa"))
    k8s_evidence["answered by"] = answer.describe()
    if answer.refused:
        _stricter(answer, gate.namespace, "the root pod of the excepted service account")


@behaviour("EXC-1")
def test_permissive_policy_refuses_other_service_accounts(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    """The same pod with the default service account is refused."""
    gate.grant(k8s_run, "privileged-sa", gate.use_permissive)
    answer = adm.admit(core, _root_pod(gate, k8s_cluster.images, None))
    assert answer.refused, "the root pod was admitted with the default service account"
    k8s_evidence["mechanism"] = answer.describe()
    k8s_evidence["message"] = answer.message


@behaviour("EXC-2")
@needs(rights.IMPERSONATE_SERVICE_ACCOUNTS)
def test_can_i_use_reports_the_exception_for_that_account_only(k8s_run, core, gate, k8s_admin, k8s_evidence):
    k8s_evidence["mechanism"] = "can-i use --as=system:serviceaccount:..."
    gate.grant(k8s_run, "privileged-sa", gate.use_permissive)
    q = Question("use", "policy", "podsecuritypolicies", namespace=gate.namespace, name=gate.permissive)
    asks = {
        f"system:serviceaccount:{gate.namespace}:privileged-sa": True,
        f"system:serviceaccount:{gate.namespace}:default": False,
        f"system:serviceaccount:{k8s_run.control_ns}:privileged-sa": False,
    }
    observed = {who: impersonated_can_i(k8s_admin, q, who) for who in asks}
    k8s_evidence["observed"] = ", ".join(f"{w.rsplit(':', 2)[-2]}:{w.rsplit(':', 1)[-1]}={v}" for w, v in observed.items())
    assert observed == asks, f"can-i use {gate.permissive}: expected {asks}, observed {observed}"


@behaviour("VERIFY-1")
@needs(rights.EXEC)
def test_restricted_container_runs_confined(k8s_admin, core, hardened, k8s_cluster, k8s_evidence):
    """Inside: empty capability bounding set, no_new_privs, seccomp filter, non-root ids, read-only root."""
    k8s_evidence["mechanism"] = "/proc/1/status, id, and a write to / inside the container"
    create_and_wait_running(core, non_root_pod("confined", hardened, k8s_cluster.images))
    code, status = exec_in(k8s_admin, hardened, "confined", ["cat", "/proc/1/status"])
    assert code == 0, status
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    observed = {k: fields.get(k, "").strip() for k in ("CapBnd", "CapEff", "NoNewPrivs", "Seccomp")}
    k8s_evidence["observed"] = ", ".join(f"{k}={v}" for k, v in observed.items())
    expected = {"CapBnd": "0000000000000000", "CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
    assert observed == expected, f"/proc/1/status: expected {expected}, observed {observed}"
    code, ids = exec_in(k8s_admin, hardened, "confined", ["id"])
    assert ids.startswith("uid=1000") and "gid=3000" in ids, f"`id` shows {ids!r}, expected uid=1000 gid=3000"
    code, out = exec_in(k8s_admin, hardened, "confined", ["touch", "/k8ssec-write-test"])
    assert code != 0 and "Read-only file system" in out, f"writing to / gave exit {code}: {out!r}"
