"""The fixtures of a k8s-sec run: the cluster, the admin client, the run, the tenancy and the user, and helpers for
a user's own tests (a namespace factory, can-i, dry-run admission).

Registered whenever the plugin is installed, so `pytest --fixtures` documents them; they work
only under --k8s-sec (elsewhere a test using one is skipped, saying so). A cluster that cannot
be used stops the whole session with one line (pytest.exit), instead of one error per test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest
from kubernetes import client

from .access import Discovery, ask_can_i, await_grant, impersonating
from .answers import Answer
from .claims import reach_claim
from . import admission, claimprobe, progress, rbac
from .cleanup import remove_leftovers
from .handle import ClusterHandle
from .cluster.select import open_cluster
from .errors import K8sSecError
from .kube import connect, server_info
from .profile import Profile
from .recorder import EVIDENCE_KEY, RECORDER, Recorder
from .report_hooks import PLUGIN_NAME as REPORT_HOOKS
from .runconfig import RUN_CONFIG, RunConfig
from .rights import CERTIFICATE_USER, CLUSTER_CHANGE_RIGHTS, LIST_NODES, RUN_RIGHTS, Rights, tenancy as tenancy_rights
from .run import Run
from .users import SIGNER, KeyStore, User, create_user
from .waits import WaitTimeout

log = logging.getLogger(__name__)
EXIT_CLUSTER = 3


def _fail(message: str) -> None:
    pytest.exit(f"k8s-sec: {message}", returncode=EXIT_CLUSTER)


@pytest.fixture(scope="session")
def k8s_session(request: pytest.FixtureRequest) -> RunConfig:
    """This k8s-sec run's configuration, frozen: settings, profile, claims, selection, waivers. Every other k8s fixture
    needs it, so without --k8s-sec they all skip here."""
    run = request.config.stash.get(RUN_CONFIG, None)
    if run is None:
        pytest.skip("the k8s-sec fixtures need a k8s-sec run: pass --k8s-sec (and --k8s-sec-cluster)")
    return run


@pytest.fixture(scope="session")
def _k8s_recorder(request: pytest.FixtureRequest, k8s_session: RunConfig) -> Recorder:
    """What the run sees: the cluster it opened and its notes go here, beside the cases' records."""
    return request.config.stash[RECORDER]


@pytest.fixture(scope="session")
def k8s_profile(k8s_session: RunConfig) -> Profile:
    """The profile in force (--k8s-sec-profile, or the seeds' lab): the claims the built-in cases check."""
    return k8s_session.profile


@dataclass(frozen=True)
class Opened:
    """The cluster as the run found it, and what the run's identity may do there."""

    handle: ClusterHandle
    rights: Rights


@pytest.fixture(scope="session")
def _k8s_opened(request: pytest.FixtureRequest, k8s_session: RunConfig, _k8s_recorder: Recorder) -> Iterator[Opened]:
    """Open (or make) the cluster, check the run's rights there, and close it at the end."""
    with contextlib.ExitStack() as stack:
        try:
            with progress.shown_by(_terminal_line(request.config)):
                handle = stack.enter_context(open_cluster(k8s_session.settings, k8s_session.profile))
            api = connect(handle)
            info = server_info(api, handle.kubeconfig)
            rights = Rights(api, handle.kubeconfig)
            missing = rights.missing(CLUSTER_CHANGE_RIGHTS if handle.may_change_cluster else RUN_RIGHTS)
        except K8sSecError as exc:
            stack.close()
            _fail(str(exc))
            raise  # unreachable: pytest.exit raises
        if missing:
            stack.close()
            whose = "the suite needs" if handle.may_change_cluster else "every run needs"
            _fail(f"the identity in {handle.kubeconfig} lacks rights {whose}: {', '.join(map(str, missing))}; "
                  "grant them, or use an admin kubeconfig")
        nodes = usable_nodes(client.CoreV1Api(api).list_node().items) if rights.allowed(LIST_NODES) else handle.node_names
        handle = dataclasses.replace(handle, git_version=info.git_version, server_version=(1, info.minor), node_names=nodes)
        _k8s_recorder.opened(handle)
        yield Opened(handle, rights)


@pytest.fixture(scope="session")
def k8s_cluster(_k8s_opened: Opened) -> ClusterHandle:
    """The cluster under test, reachable and with the rights every run needs.

    Without cluster-scoped changes only the run's own rights are asked here (`rights.RUN_RIGHTS`);
    the cases ask for theirs (`k8s_rights`). Nodes the identity may not list stay as the
    provider knows them: lab pods are then not pinned to nodes.
    """
    return _k8s_opened.handle


def _terminal_line(config: pytest.Config) -> Callable[[str], None]:
    """Write a `k8s-sec:` line on the terminal at once, past pytest's output capture."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if terminal is None:
        return log.info

    def write(message: str) -> None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            terminal.write_line(f"k8s-sec: {message}")
    return write


def usable_nodes(nodes: list[Any]) -> list[str]:
    """Nodes a lab pod pinned by name will run on: Ready, not cordoned, Linux, no NoExecute taint."""
    def usable(node: Any) -> bool:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        linux = (node.metadata.labels or {}).get("kubernetes.io/os", "linux") == "linux"
        evicting = any(t.effect == "NoExecute" for t in node.spec.taints or [])
        return ready and linux and not node.spec.unschedulable and not evicting

    return [n.metadata.name for n in nodes if usable(n)]


@pytest.fixture(scope="session")
def k8s_admin(k8s_cluster: ClusterHandle) -> client.ApiClient:
    """A kubernetes client (ApiClient) with the run's own identity: the kubeconfig the cluster was opened with."""
    return connect(k8s_cluster)


@pytest.fixture(scope="session")
def k8s_rights(_k8s_opened: Opened) -> Rights:
    """What the run's identity may do, asked once per right: `require` skips a case that lacks one."""
    return _k8s_opened.rights


@pytest.fixture(autouse=True)
def _k8s_needs_rights(request: pytest.FixtureRequest) -> None:
    """A case marked `needs_rights(...)` is skipped, naming the rights, where the identity lacks them."""
    needed = [right for marker in request.node.iter_markers("needs_rights") for right in marker.args]
    if needed:
        request.getfixturevalue("k8s_rights").require(*needed)


@pytest.fixture(scope="session")
def k8s_run(k8s_admin: client.ApiClient, k8s_session: RunConfig, _k8s_recorder: Recorder) -> Iterator[Run]:
    """This run: removes what killed runs left, labels everything, removes it all at the end.

    A claims file's namespaces, pods, Services and accounts are checked first: a claim about
    nothing stops the run with one line before anything is made.
    """
    if k8s_session.claims:
        try:
            claimprobe.check(k8s_admin, k8s_session.claims)
        except K8sSecError as exc:
            _fail(str(exc))
    run = Run(k8s_admin)
    for note in remove_leftovers(k8s_admin, run.id):
        _k8s_recorder.note(note)
        log.warning("k8s-sec: %s", note)
    run.start()
    try:
        yield run
    finally:
        remaining = run.finish()
        if remaining:
            _k8s_recorder.note(f"run {run.id} could not remove: {', '.join(remaining)}")


@pytest.fixture(scope="session", autouse=True)
def _k8s_junit_properties(request: pytest.FixtureRequest) -> None:
    """Hand the report pytest's suite-level JUnit properties: the verdict and each behaviour's controls go there."""
    hooks = request.config.pluginmanager.get_plugin(REPORT_HOOKS)
    if hooks is not None and request.config.pluginmanager.has_plugin("junitxml"):
        hooks.junit_property = request.getfixturevalue("record_testsuite_property")


@pytest.fixture(scope="session")
def k8s_keys(k8s_session: RunConfig) -> Iterator[KeyStore]:
    """Where test users' private keys live: a 0700 temporary directory, 0600 files, deleted at the end."""
    keys = KeyStore()
    yield keys
    keys.close()


@dataclass
class Tenancy:
    """The seeds' tenancy with unique names: tenant and other namespace, the developer role and its binding."""

    tenant: str
    other: str
    role_name: str
    role_kind: str
    binding_name: str
    group: str
    rules: list[dict[str, Any]]

    @property
    def namespaces(self) -> dict[str, str]:
        return {"tenant": self.tenant, "other": self.other, "cluster": ""}


@pytest.fixture(scope="session")
def tenancy(k8s_run: Run, k8s_admin: client.ApiClient, k8s_cluster: ClusterHandle, k8s_profile: Profile,
        k8s_keys: KeyStore, k8s_rights: Rights) -> Tenancy:
    """RBAC-1 and USER-1: the developer role bound to the group in the tenant namespace, and the user."""
    cluster_scoped = k8s_cluster.may_change_cluster
    role_kind = "ClusterRole" if cluster_scoped else "Role"
    k8s_rights.require(*tenancy_rights(role_kind))
    tenant = k8s_run.namespace("development")
    other = k8s_run.namespace("other")
    role_name = k8s_run.name("developer")
    k8s_run.create(rbac.role(role_name, k8s_profile.developer_rules, None if cluster_scoped else tenant))
    binding_name = k8s_run.name("developer-binding")
    k8s_run.create(rbac.binding(binding_name, role_kind, role_name, [rbac.group(k8s_profile.developer_group)], tenant))
    _await_binding(k8s_admin, k8s_profile, tenant)
    return Tenancy(tenant, other, role_name, role_kind, binding_name, k8s_profile.developer_group, k8s_profile.developer_rules)


def _await_binding(admin: client.ApiClient, profile: Profile, tenant: str) -> None:
    """No case may ask before the new role and binding are in the authorizer's cache.

    A group member's first granted resource stands for all of them (a role arrives whole).
    """
    rule = profile.developer_rules[0]
    base, _, sub = rule["resources"][0].partition("/")
    await_grant(admin, Discovery(admin).question(rbac.verbs_to_ask(rule)[0], base, sub, tenant), "k8ssec-any-member",
                [profile.developer_group], "the developer role binding")


@pytest.fixture(scope="session")
def k8s_user(k8s_run: Run, k8s_admin: client.ApiClient, k8s_cluster: ClusterHandle, k8s_profile: Profile,
             k8s_keys: KeyStore, k8s_rights: Rights) -> User:
    """USER-1's user, made on first use: from the profile's kubeconfig, or from a client certificate.

    A cluster with no signer for client certificates (managed clusters whose users come from
    OIDC) skips the cases that need this user, with the reason; the others run.
    """
    if k8s_profile.user_kubeconfig:
        return User(k8s_profile.user_name, k8s_profile.user_groups, Path(k8s_profile.user_kubeconfig),
                    origin=f"the profile's user kubeconfig {k8s_profile.user_kubeconfig}")
    require_cluster_changes(k8s_cluster, "a certificate user (a CertificateSigningRequest)")
    k8s_rights.require(*CERTIFICATE_USER)
    try:
        return create_user(k8s_run, k8s_admin, k8s_keys, k8s_profile.user_name, k8s_profile.user_groups, "user")
    except WaitTimeout as exc:
        pytest.skip(f"no client certificate was issued ({exc}): this cluster signs none for {SIGNER}; "
                    "give the profile a user.kubeconfig for a user in the developers' group")


@pytest.fixture
def k8s_evidence(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A case's evidence for the report: what mechanism it tested and what it observed."""
    evidence: dict[str, Any] = {}
    request.node.stash[EVIDENCE_KEY] = evidence
    return evidence


def require_cluster_changes(handle: ClusterHandle, what: str) -> None:
    """Skip a case that needs a cluster-scoped change the user did not allow."""
    if not handle.may_change_cluster:
        pytest.skip(f"{what} needs a cluster-scoped change: this cluster was not created by the plugin; "
                    "pass --k8s-sec-allow-cluster-changes to allow it")


@pytest.fixture
def k8s_namespace(k8s_run: Run) -> Callable[..., str]:
    """A namespace factory: `k8s_namespace("shop", labels={...})` makes a namespace labelled with the run, waits for its
    default service account, and returns its real name; it is removed with the run's other objects."""
    return lambda base, labels=None: k8s_run.namespace(base, labels)


@pytest.fixture
def k8s_can_i(k8s_admin: client.ApiClient, k8s_evidence: dict[str, Any]) -> Callable[..., bool]:
    """can-i for any subject: `k8s_can_i("get", "secrets", namespace="prod", user="ci", groups=["ci"])`, or
    `resource="pods/exec"`; no namespace asks at cluster scope. The SubjectAccessReview's answer (the
    authorizer's, whatever it chains), with the resource resolved through discovery; each answer goes
    into the case's evidence."""
    def can_i(verb: str, resource: str, namespace: str | None = None, user: str = "", groups: Iterable[str] = ()) -> bool:
        q, allowed = ask_can_i(k8s_admin, verb, resource, namespace, user, list(groups))
        k8s_evidence.setdefault("can-i", []).append(f"{user or ','.join(groups)} {q.label} in {namespace or 'cluster'}: "
                                                    f"{'yes' if allowed else 'no'}")
        k8s_evidence.setdefault("mechanism", "SubjectAccessReview")
        return allowed
    return can_i


@pytest.fixture
def k8s_make_user(k8s_run: Run, k8s_admin: client.ApiClient, k8s_cluster: ClusterHandle, k8s_keys: KeyStore,
                  k8s_rights: Rights) -> Callable[..., client.ApiClient]:
    """A user factory: `k8s_make_user("ci", groups=["ci"])` returns a kubernetes ApiClient acting as that user by
    impersonation; `certificate=True` makes a real user from a client certificate (a CSR signed by the cluster, its
    key 0600 in a private directory deleted at the end), which needs cluster-scoped changes allowed."""
    def make(name: str, groups: Iterable[str] = (), certificate: bool = False) -> client.ApiClient:
        if not certificate:
            return impersonating(k8s_admin, name, list(groups))
        require_cluster_changes(k8s_cluster, "a certificate user (a CertificateSigningRequest)")
        k8s_rights.require(*CERTIFICATE_USER)
        base = "user-" + re.sub(r"[^a-z0-9-]+", "-", name.lower())
        return create_user(k8s_run, k8s_admin, k8s_keys, name, list(groups), base).api()
    return make


class Reachability:
    """Reachability of the user's own pods, judged as the claims file's are (`claimprobe.judge`)."""

    def __init__(self, lab: claimprobe.ProbeLab, admin: client.ApiClient, evidence: dict[str, Any], case: str) -> None:
        self.lab, self.admin, self.evidence, self.case = lab, admin, evidence, case

    def check(self, source: dict[str, Any], destination: dict[str, Any], port: int, protocol: str = "TCP",
              allowed: bool = True, control: dict[str, Any] | str | None = None) -> claimprobe.Judgement:
        spec: dict[str, Any] = {"from": source, "to": destination, "port": port, "protocol": protocol,
                                "expect": "allowed" if allowed else "blocked"}
        if control is not None:
            spec["control"] = {"none": control} if isinstance(control, str) else {"from": control}
        claim = reach_claim(self.case, spec)
        observed = claimprobe.observe(self.lab, client.CoreV1Api(self.admin), [claim])
        judgement = observed.judge(claim, claim.check.describe(), claimprobe.policies_in_force(self.admin))
        self.evidence.setdefault("mechanism", judgement.evidence["mechanism"])
        self.evidence.setdefault("reach", []).append({k: v for k, v in judgement.evidence.items() if k != "mechanism"})
        return judgement

    def assert_allowed(self, source: dict[str, Any], destination: dict[str, Any], port: int, protocol: str = "TCP") -> None:
        """Fail unless every destination address answers the source in both rounds."""
        self.check(source, destination, port, protocol, True).settle()

    def assert_blocked(self, source: dict[str, Any], destination: dict[str, Any], port: int, protocol: str = "TCP",
                       control: dict[str, Any] | str | None = None) -> None:
        """Fail unless no destination address answers the source; `control` is a source the destination must
        answer (the positive control), or a string saying why there is none: without a control answering, the
        case is skipped as not observed."""
        self.check(source, destination, port, protocol, False, control).settle()


@pytest.fixture(scope="session")
def _k8s_probe_lab(k8s_session: RunConfig, k8s_run: Run, k8s_admin: client.ApiClient,
                   k8s_cluster: ClusterHandle) -> claimprobe.ProbeLab:
    """The run's probe pods in the user's namespaces, one per source, shared by every case that probes."""
    if not k8s_session.settings.allow_probe_pods:
        pytest.skip("not observed: reachability needs probe pods in your namespaces: pass --k8s-sec-allow-probe-pods")
    return claimprobe.ProbeLab(k8s_run, k8s_admin, k8s_cluster.images)


@pytest.fixture
def k8s_reach(request: pytest.FixtureRequest, _k8s_probe_lab: claimprobe.ProbeLab, k8s_admin: client.ApiClient,
              k8s_evidence: dict[str, Any]) -> Reachability:
    """Reachability of your own pods: `k8s_reach.assert_blocked({"namespace": "web", "pods": {"app": "frontend"}},
    {"namespace": "data", "pods": {"app": "db"}}, 5432, control={"namespace": "web", "pods": {"app": "api"}})`, or
    `assert_allowed(...)`; sources and destinations as in the claims file (`to` may be `{"service": "ns/name"}` or
    `{"ip": ...}`; protocol "UDP" asks DNS on port 53). Probe pods carrying the source's labels run in your
    namespaces, so it needs --k8s-sec-allow-probe-pods; each answer goes into the case's evidence."""
    return Reachability(_k8s_probe_lab, k8s_admin, k8s_evidence, request.node.nodeid)


@pytest.fixture
def k8s_admit(k8s_admin: client.ApiClient, k8s_evidence: dict[str, Any]) -> Callable[..., Answer]:
    """Admission of a pod, by server-side dry run (nothing is created): `k8s_admit(pod_manifest)` returns an
    `answers.Answer`: `.admitted`, or refused with `.message` and the `.mechanism` that refused it (Pod Security,
    a ValidatingAdmissionPolicy, a webhook), named from the API server's frame. `as_user`/`as_groups` ask by
    impersonation. Each answer goes into the case's evidence."""
    def admit(pod: dict[str, Any], as_user: str | None = None, as_groups: Iterable[str] = ()) -> Answer:
        answer = admission.admit_as(k8s_admin, pod, as_user, list(as_groups))
        k8s_evidence.setdefault("admission", []).append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}: "
                                                        f"{answer.describe()}")
        return answer
    return admit
