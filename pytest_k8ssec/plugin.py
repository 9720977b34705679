"""The pytest plugin: options, collection of the installed suite, behaviour selection, report hooks.

It only wires hooks and options; the work is done in the concern modules. Without --k8s-sec
(or --k8s-sec-cleanup) it changes nothing in a test run.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from .baseline import load_report
from .behaviours import parse_selection
from .claims import catalogue, load_claims
from .errors import K8sSecError
from .profile import load_profile
from .settings import DEFAULT_K8S_VERSION, PROVIDERS, SUITES, Settings
from .waivers import load_waivers
from .waivers import today as waiver_day

OPTIONS: list[tuple[str, dict]] = [
    ("--k8s-sec", dict(action="store_true", help="run the Kubernetes security conformance suite")),
    ("--k8s-sec-cluster", dict(choices=PROVIDERS, help="which cluster: auto (default), local, kind or existing")),
    ("--context", dict(metavar="NAME", help="kubeconfig context of an existing cluster")),
    ("--k8s-sec-profile", dict(metavar="FILE", help="YAML profile of what the cluster must enforce (default: the seeds' lab)")),
    ("--k8s-sec-report", dict(metavar="DIR", help="write the certification report (JSON, Markdown and SARIF) to DIR")),
    ("--k8s-sec-keep-cluster", dict(action="store_true", default=None, help="keep a cluster the plugin created, and reuse it next run")),
    ("--k8s-sec-allow-cluster-changes", dict(action="store_true", default=None,
                                             help="allow cluster-scoped changes on a cluster the plugin did not create")),
    ("--k8s-sec-k8s-version", dict(metavar="VERSION", help=f"Kubernetes release for the local and kind clusters (default {DEFAULT_K8S_VERSION})")),
    ("--k8s-sec-behaviours", dict(metavar="IDS", help="comma-separated behaviour IDs to run (default: all)")),
    ("--k8s-sec-accept-partial", dict(action="store_true", default=None,
                                      help="exit 0 when no case failed but some required behaviours were not observed "
                                           "(the report then says PARTIAL)")),
    ("--k8s-sec-waivers", dict(metavar="FILE", help="YAML file of waived failures (id, reason, owner, expires); "
                               "an expired waiver fails the run")),
    ("--k8s-sec-strict-waivers", dict(action="store_true", default=None,
                                      help="also fail the run on a waiver whose cases pass now (it should be removed)")),
    ("--k8s-sec-baseline", dict(metavar="REPORT_JSON", help="compare with an earlier run's k8s-sec-report.json; "
                                "a case that passed there and does not now fails the run")),
    ("--k8s-sec-claims", dict(metavar="FILE", help="YAML claims about your own namespaces, policies and identities, "
                              "each with an ID of yours that counts in the verdict (schema: pytest_k8ssec/schemas)")),
    ("--k8s-sec-suite", dict(choices=SUITES, help="builtin: run the built-in suite beside your tests and claims; "
                             "none: only yours (default: builtin when no test paths are given)")),
    ("--k8s-sec-allow-probe-pods", dict(action="store_true", default=None,
                                        help="allow probe pods in your own namespaces for the claims file's reachability claims")),
    ("--k8s-sec-cleanup", dict(action="store_true", default=None, help="only remove what earlier killed runs left on the cluster, then exit")),
    ("--k8s-sec-kind-image", dict(metavar="IMAGE", help="kind node image (default: pinned per Kubernetes version)")),
    ("--k8s-sec-kind-workers", dict(metavar="N", type=int, help="kind worker nodes (default 1)")),
    ("--k8s-sec-calico-manifest", dict(metavar="URL_OR_FILE", help="Calico manifest for kind (default: the pinned release)")),
    ("--k8s-sec-registry-mirror", dict(metavar="HOST[:PORT]", help="a registry mirror kind nodes pull docker.io, "
                                       "registry.k8s.io and quay.io images through (reachable from inside the nodes)")),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k8s-sec", "Kubernetes security conformance")
    for flag, kwargs in OPTIONS:
        dest = flag.lstrip("-").replace("-", "_")
        group.addoption(flag, dest=dest, **kwargs)
        parser.addini(dest, help=kwargs["help"], default=None)
    # --kubeconfig belongs to pytest-kind (a dependency), whose option we share; this is its ini twin.
    parser.addini("k8s_sec_kubeconfig", help="kubeconfig of an existing cluster (as --kubeconfig)", default=None)


def _option(config: pytest.Config, flag: str):
    dest = flag.lstrip("-").replace("-", "_")
    value = config.getoption(dest, None)
    if value is None:
        value = config.getini("k8s_sec_kubeconfig" if dest == "kubeconfig" else dest)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
    return value


def read_settings(config: pytest.Config) -> Settings:
    def path(flag: str) -> Path | None:
        value = _option(config, flag)
        return Path(value) if value else None

    return Settings(
        provider=_option(config, "--k8s-sec-cluster") or "auto",
        kubeconfig=path("--kubeconfig"),
        context=_option(config, "--context") or None,
        profile=path("--k8s-sec-profile"),
        report_dir=path("--k8s-sec-report"),
        keep_cluster=bool(_option(config, "--k8s-sec-keep-cluster")),
        allow_cluster_changes=bool(_option(config, "--k8s-sec-allow-cluster-changes")),
        k8s_version=_option(config, "--k8s-sec-k8s-version") or DEFAULT_K8S_VERSION,
        behaviours=_option(config, "--k8s-sec-behaviours") or None,
        kind_node_image=_option(config, "--k8s-sec-kind-image") or None,
        kind_workers=int(_option(config, "--k8s-sec-kind-workers") or 1),
        calico_manifest=_option(config, "--k8s-sec-calico-manifest") or None,
        cleanup_only=bool(_option(config, "--k8s-sec-cleanup")),
        accept_partial=bool(_option(config, "--k8s-sec-accept-partial")),
        registry_mirror=_option(config, "--k8s-sec-registry-mirror") or None,
        waivers=path("--k8s-sec-waivers"),
        strict_waivers=bool(_option(config, "--k8s-sec-strict-waivers")),
        baseline=path("--k8s-sec-baseline"),
        claims=path("--k8s-sec-claims"),
        suite=_option(config, "--k8s-sec-suite") or None,
        allow_probe_pods=bool(_option(config, "--k8s-sec-allow-probe-pods")),
    )


CLAIMS_MODULE = "test_claims.py"  # the claims file's cases, in the suite


def suite_dir() -> Path:
    """Where the installed conformance suite lives: in a source checkout, the one beside this package.

    An editable install maps `pytest_k8ssec.conformance` to the tree it was installed from, so a
    second checkout (a worktree on PYTHONPATH) would otherwise run another tree's suite.
    """
    from importlib import resources

    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "conformance" / "__init__.py").is_file():
        return root / "conformance"
    return Path(str(resources.files("pytest_k8ssec.conformance")))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--k8s-sec-cleanup: remove what killed runs left on the cluster, say so, and run nothing."""
    if not _option(config, "--k8s-sec-cleanup"):
        return None
    from .cleanup import cleanup_only
    from .cluster.select import find_cluster
    from .kube import connect, server_info

    try:
        handle = find_cluster(read_settings(config))
        if handle is None:
            lines = ["nothing to clean: the local cluster is not running"]
        else:
            api = connect(handle)
            server_info(api, handle.kubeconfig)
            lines = cleanup_only(api)
    except K8sSecError as exc:
        print(f"k8s-sec: {exc}")
        return 3
    for line in lines:
        print(f"k8s-sec: {line}")
    return 0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "behaviour(id): the documented behaviour ID a k8s-sec case asserts")
    config.addinivalue_line("markers", "needs_rights(*rights): the rights.Right objects a k8s-sec case needs; "
                            "skipped, naming them, where the identity lacks one")
    from . import fixtures

    config.pluginmanager.register(fixtures, "k8ssec-fixtures")  # documented by `pytest --fixtures`; skip without --k8s-sec
    if not _option(config, "--k8s-sec"):
        return
    try:
        settings = read_settings(config)
        claims = load_claims(settings.claims)
    except K8sSecError as exc:  # bad claims: one line, exit 3, nothing created
        pytest.exit(f"k8s-sec: {exc}", returncode=fixtures.EXIT_CLUSTER)
    try:
        profile = load_profile(settings.profile)
        known = catalogue(claims)
        selection = parse_selection(settings.behaviours, known)
        waivers, today = load_waivers(settings.waivers, known), waiver_day()
        baseline = load_report(settings.baseline) if settings.baseline else None
        if settings.report_dir:
            _check_writable(settings.report_dir)
    except K8sSecError as exc:
        raise pytest.UsageError(f"k8s-sec: {exc}") from None
    from .recorder import RECORDER, Recorder
    from .report_hooks import PLUGIN_NAME, ReportHooks
    from .runconfig import RUN_CONFIG, RunConfig

    _cleanup_on_sigterm(config)
    given = config.args_source == pytest.Config.ArgsSource.ARGS
    builtin = settings.suite == "builtin" or (settings.suite is None and not given)
    if not (builtin or given or claims):
        pytest.exit("k8s-sec: --k8s-sec-suite=none runs only your own tests and claims: give test paths or "
                    "--k8s-sec-claims", returncode=fixtures.EXIT_CLUSTER)
    run = RunConfig(settings, profile, None if selection is None else frozenset(selection), claims, builtin,
                    tuple(waivers), today, baseline)
    config.stash[RUN_CONFIG], config.stash[RECORDER] = run, Recorder()
    config.pluginmanager.register(ReportHooks(run, config.stash[RECORDER]), PLUGIN_NAME)
    paths = config.args if given else []
    if builtin:
        paths = [*paths, str(suite_dir())]
    elif claims and claims.claims:
        paths = [*paths, str(suite_dir() / CLAIMS_MODULE)]
    config.args = paths


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The claims file's cases are collected only when a claims file gives some."""
    from .runconfig import RUN_CONFIG

    if collection_path.name != CLAIMS_MODULE or collection_path.parent != suite_dir():
        return None
    run = config.stash.get(RUN_CONFIG, None)
    return None if run and run.claims and run.claims.claims else True


def _cleanup_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (CI cancelling a job) interrupts like Ctrl-C, so fixture teardown removes what the run made."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"k8s-sec: stopped by signal {signal.Signals(signum).name}, cleaning up")

    previous = signal.signal(signal.SIGTERM, interrupt)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".k8ssec-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise K8sSecError(f"report directory {directory} is not writable ({exc.strerror}): pass another --k8s-sec-report") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from . import fixtures
    from .runconfig import RUN_CONFIG

    run = config.stash.get(RUN_CONFIG, None)
    if run is None:
        return
    wanted = (run.selection or set(run.catalogue)) - set(run.profile.not_applicable)
    keep, drop = [], []
    undeclared = sorted({f"{m.args[0]} ({item.nodeid})" for item in items
                         for m in [item.get_closest_marker("behaviour")] if m and m.args[0] not in run.catalogue})
    if undeclared:
        pytest.exit(f"k8s-sec: behaviour {undeclared[0]} is not declared: declare your own IDs under `behaviours:` "
                    "in the claims file (--k8s-sec-claims)", returncode=fixtures.EXIT_CLUSTER)
    for item in items:
        marker = item.get_closest_marker("behaviour")
        chosen = marker.args[0] in wanted if marker else run.selection is None  # unmarked tests: only without a selection
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

