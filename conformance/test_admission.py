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
from pytest_k8ssec.access import Question, await_grant, impersonated_can_i, impersonating, subject_can_i
from pytest_k8ssec.certification import not_applicable
from pytest_k8ssec.fixtures import require_cluster_changes
from pytest_k8ssec.pods import (RESTRICTED_CONTAINER, create_and_wait_running, exec_in, is_ready, non_root_pod, pod,
                                privileged_pod, root_image_pod, waiting_reason)
from pytest_k8ssec.waits import wait_counting, wait_for

behaviour = pytest.mark.behaviour
needs = pytest.mark.needs_rights


@pytest.fixture(scope="module")
def mechanism(k8s_admin, k8s_cluster) -> adm.Mechanism:
    return adm.detect(k8s_admin, k8s_cluster.server_version[1])


@pytest.fixture(scope="module")
def core(k8s_admin) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_admin)


@pytest.fixture(scope="module")
def hardened(k8s_run, k8s_profile) -> str:
    """A tenant namespace hardened with Pod Security Admission at the profile's level."""
    return k8s_run.namespace("hardened", adm.psa_labels(k8s_profile.tenant_level))


@pytest.fixture(scope="module")
def unenforced(k8s_run) -> str:
    return k8s_run.namespace("unenforced", adm.psa_labels("privileged"))


def _gate(k8s_run, k8s_cluster, mechanism, base: str) -> adm.Gate:
    require_cluster_changes(k8s_cluster, "service-account gating (a ValidatingAdmissionPolicy)")
    if not mechanism.vap:
        pytest.skip(f"this cluster (1.{mechanism.minor}) serves no ValidatingAdmissionPolicy API")
    gate = adm.make_gate(k8s_run, base)
    gate.wait_active(client.CoreV1Api(k8s_run.api), k8s_cluster.images)
    return gate


@pytest.fixture(scope="module")
def gate(k8s_run, k8s_cluster, mechanism) -> adm.Gate:
    return _gate(k8s_run, k8s_cluster, mechanism, "gated")


@behaviour("VERSION-1")
def test_mechanism_is_picked_from_version_and_discovery(mechanism, core, hardened, k8s_cluster, k8s_evidence):
    """The report names the mechanism the server really uses: Pod Security admission by its answer, the APIs by discovery."""
    k8s_evidence["mechanism"] = mechanism.name
    k8s_evidence["server"] = k8s_cluster.git_version
    admitted, message = adm.admit(core, privileged_pod("escape", hardened, k8s_cluster.images))
    answered = not admitted and "violates PodSecurity" in message
    assert answered == mechanism.psa, (f"the mechanism says Pod Security admission {'is' if mechanism.psa else 'is not'} "
                                       f"in force, but a privileged pod in a namespace labelled enforce got: "
                                       f"{message or 'admitted'}")
    if mechanism.minor >= 25:
        assert not mechanism.psp, "PodSecurityPolicy reported on a cluster where it no longer exists"
    if mechanism.minor >= 30:
        assert mechanism.vap, f"Kubernetes 1.{mechanism.minor} should serve ValidatingAdmissionPolicy (GA in 1.30)"
    assert mechanism.policy_api_group == ("extensions" if mechanism.minor < 16 else "policy")


@behaviour("PRIV-1")
@needs(rights.EXEC, rights.GET_NODES)
def test_privileged_pod_without_enforcement_sees_node_network(k8s_run, k8s_admin, core, unenforced, k8s_cluster, k8s_evidence):
    """Without enforcement, a privileged hostNetwork pod is admitted and sees the node's addresses."""
    k8s_evidence["mechanism"] = "namespace labelled pod-security enforce=privileged"
    running = create_and_wait_running(core, privileged_pod("escape", unenforced, k8s_cluster.images))
    node = core.read_node(running.spec.node_name)
    node_ips = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    code, out = exec_in(k8s_admin, unenforced, "escape", ["ip", "-o", "addr"])
    assert code == 0, f"`ip -o addr` in the privileged pod failed ({code}): {out}"
    k8s_evidence["node addresses seen"] = ", ".join(ip for ip in node_ips if ip in out)
    assert any(ip in out for ip in node_ips), f"the hostNetwork pod does not see the node's address {node_ips}:\n{out}"


@behaviour("PRIV-1")
def test_privileged_pod_rejected_on_hardened_namespace(core, hardened, k8s_cluster, k8s_profile, k8s_evidence):
    """On a hardened namespace the same pod is rejected, naming the violated controls."""
    k8s_evidence["mechanism"] = f"Pod Security Admission, enforce={k8s_profile.tenant_level}"
    admitted, message = adm.admit(core, privileged_pod("escape", hardened, k8s_cluster.images))
    if admitted and not k8s_profile.admission_enforced:
        not_applicable("the profile says this cluster does not enforce pod security (admission.enforced: false)")
    assert not admitted, f"a privileged hostNetwork pod was admitted in a namespace labelled enforce={k8s_profile.tenant_level}"
    k8s_evidence["message"] = message
    for control in ("violates PodSecurity", "privileged", "host"):
        assert control.lower() in message.lower(), f"rejection does not name {control!r}: {message}"


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
    k8s_evidence["mechanism"] = "server-side dry-run, impersonating the tenant, in an unlabelled namespace"
    found = adm.enforced_level(client.CoreV1Api(as_tenant), unlabelled, k8s_cluster.images)
    k8s_evidence["observed"] = f"{found.level} in {unlabelled}"
    assert found.at_least(required), found.explain(required, who)


@behaviour("PRIV-1")
def test_named_namespaces_are_hardened(core, k8s_profile, k8s_cluster, k8s_rights, k8s_evidence):
    """Each existing namespace the profile names enforces at least its level (the owner's labels, or the default)."""
    if not k8s_profile.hardened_namespaces:
        not_applicable("the profile names no existing namespaces to check (admission.hardened_namespaces)")
    k8s_rights.require(*(rights.Right("create", "pods", namespace=ns) for ns in k8s_profile.hardened_namespaces))
    k8s_evidence["mechanism"] = "server-side dry-run as the admin in each named namespace"
    found = {ns: adm.enforced_level(core, ns, k8s_cluster.images) for ns in k8s_profile.hardened_namespaces}
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


@behaviour("PSP-1")
@needs(rights.SUBJECT_ACCESS_REVIEWS)
def test_non_root_pod_rejected_without_authorized_policy(core, gate, k8s_admin, k8s_cluster, k8s_evidence):
    k8s_evidence["mechanism"] = "ValidatingAdmissionPolicy: service account `use` via authorizer"
    account = f"system:serviceaccount:{gate.namespace}:default"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{gate.namespace}", "system:authenticated"]
    grants = [p for p in (gate.restricted, gate.permissive)
              if subject_can_i(k8s_admin, Question("use", "policy", "podsecuritypolicies", namespace=gate.namespace, name=p),
                               account, groups)]
    assert not grants, (f"{account} (with system:authenticated) may already use {', '.join(grants)}: the cluster grants "
                        "`use` of pod security policies to every service account or every user")
    admitted, message = adm.admit(core, non_root_pod("nonroot", gate.namespace, k8s_cluster.images))
    assert not admitted, "a pod whose service account may use no policy was admitted"
    assert adm.REJECTED_MESSAGE in message, message
    k8s_evidence["message"] = message


@behaviour("PSP-2")
def test_restricted_policy_admits_non_root_but_not_privileged_or_root(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    k8s_evidence["mechanism"] = "ValidatingAdmissionPolicy + RBAC `use` of the restricted policy"
    images = k8s_cluster.images
    gate.grant(k8s_run, "app", gate.use_restricted,
               until_admitted=non_root_pod("nonroot", gate.namespace, images, service_account="app"))
    root = non_root_pod("root", gate.namespace, images, service_account="app")
    root["spec"]["securityContext"] = {"runAsUser": 0}
    root["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    capable = non_root_pod("capable", gate.namespace, images, service_account="app")
    capable["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["CHOWN"]  # baseline allows it
    refused = {}
    for label, manifest in (("privileged", privileged_pod("priv", gate.namespace, images, service_account="app")),
                            ("root", root), ("capabilities.add", capable)):
        admitted, message = adm.admit(core, manifest)
        assert not admitted, f"the {label} pod was admitted under the restricted policy"
        refused[label] = message
    k8s_evidence["refused"] = ", ".join(refused)
    # Pod Security (baseline) may refuse the privileged pod first; what baseline allows, only the gate refuses
    assert all(adm.REJECTED_MESSAGE in refused[label] for label in ("root", "capabilities.add")), refused


@behaviour("PSP-2")
def test_restricted_policy_covers_ephemeral_containers(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    """A debug container added to a running restricted pod is gated like the pod: root refused, compliant admitted."""
    k8s_evidence["mechanism"] = "ValidatingAdmissionPolicy on UPDATE of pods/ephemeralcontainers"
    images = k8s_cluster.images
    target = non_root_pod("debug-target", gate.namespace, images, service_account="app")
    gate.grant(k8s_run, "app", gate.use_restricted, until_admitted=target)
    core.create_namespaced_pod(gate.namespace, target)
    compliant = {"name": "debug", "image": images.busybox_nonroot, "imagePullPolicy": images.pull_policy,
                 "command": ["sh"], "securityContext": copy.deepcopy(RESTRICTED_CONTAINER)}
    admitted, message = adm.admit_ephemeral(core, gate.namespace, "debug-target", compliant)
    assert admitted, f"a restricted-compliant ephemeral container was refused, so refusals prove nothing: {message}"
    root = {**compliant, "name": "debug-root", "image": images.busybox, "securityContext": {}}  # baseline allows it
    admitted, message = adm.admit_ephemeral(core, gate.namespace, "debug-target", root)
    assert not admitted, "a root ephemeral container keeping its capabilities was added under the restricted policy"
    assert adm.REJECTED_MESSAGE in message, message
    k8s_evidence["message"] = message


@pytest.fixture(scope="module")
def controllers(k8s_run, k8s_cluster, mechanism) -> adm.Gate:
    """A ReplicationController and a Deployment whose pods' service account may use no policy yet."""
    g = _gate(k8s_run, k8s_cluster, mechanism, "gated-ctl")
    adm.create_gated_controllers(k8s_run, g, k8s_cluster.images)
    return g


@behaviour("PSP-3")
@pytest.mark.parametrize("kind", ["ReplicationController", "ReplicaSet"])
@needs(rights.EVENTS)
def test_controller_cannot_create_pods_until_service_account_authorized(kind, controllers, core, k8s_admin, k8s_evidence):
    """The user's controller object is accepted, but its pods are refused: ReplicaFailure and FailedCreate."""
    k8s_evidence["mechanism"] = "ValidatingAdmissionPolicy on the controller's pods"
    ns = controllers.namespace

    def outcome() -> tuple[str, list[str]]:  # the refusal, or the pods that should not exist
        return adm.failed_create(core, ns, kind), adm.pod_names(core, ns)

    message, owned = wait_for(f"a FailedCreate event for the {kind}, or its pods", outcome, timeout=60,
                              ready=lambda o: bool(o[0] or o[1]))
    assert not owned, f"pods were created although their service account may use no policy: {owned}"
    assert adm.REJECTED_MESSAGE in message, f"FailedCreate does not carry the admission message: {message}"
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
    admitted, message = adm.admit(core, manifest)
    assert admitted, f"the pod should pass admission (the kubelet is what refuses it): {message}"
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


@behaviour("EXC-1")
def test_permissive_policy_only_for_one_service_account(k8s_run, core, gate, k8s_cluster, k8s_evidence):
    k8s_evidence["mechanism"] = "ValidatingAdmissionPolicy + RBAC `use` of the permissive policy by one service account"
    # a root pod keeping its capabilities: it violates restricted, and stays within the namespace's baseline
    root_as = lambda account: pod("root", gate.namespace, k8s_cluster.images, service_account=account)  # noqa: E731
    gate.grant(k8s_run, "privileged-sa", gate.use_permissive, until_admitted=root_as("privileged-sa"))
    admitted, message = adm.admit(core, root_as(None))
    assert not admitted, "the root pod was admitted with the default service account"
    assert adm.REJECTED_MESSAGE in message, message


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
