"""What the local cluster changes on the machine, how it is set up, found again and removed.

Everything here is found by names and paths that belong to the cluster alone (its run
directory, its interfaces, its cgroup root, the KUBE-/CNI- iptables chains its components
write), so teardown works even after the cluster was killed.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from pathlib import Path

from .layout import BRIDGE, CGROUP_ROOT, NODE_DEVICE, NODE_IP

log = logging.getLogger(__name__)

CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPSET_PREFIXES = ("KUBE-", "kube-router-", "inet6:KUBE-", "inet6:kube-router-")
# What kube-router's firewall writes: its own cleanup (--cleanup-config) panics in v2.1 and leaves these.
KUBE_ROUTER_CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
CGROUP_BASE = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}


def _run(*argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def set_up(run_dir: Path) -> dict[str, object]:
    """Create the node's address and switch on forwarding; return what to restore at teardown."""
    before = {
        "netns": sorted(list_netns()),
        "sysctls": {key: Path("/proc/sys", key).read_text().strip() for key in SYSCTLS if Path("/proc/sys", key).exists()},
    }
    if not link_exists(NODE_DEVICE):
        # An empty bridge serves as a dummy interface: kernels without the dummy module have bridges.
        _run("ip", "link", "add", NODE_DEVICE, "type", "bridge", check=True)
    _run("ip", "addr", "replace", f"{NODE_IP}/32", "dev", NODE_DEVICE, check=True)
    _run("ip", "link", "set", NODE_DEVICE, "up", check=True)
    for key, value in SYSCTLS.items():
        path = Path("/proc/sys", key)
        if path.exists():
            path.write_text(value)
    make_cgroup_root()
    return before


def make_cgroup_root() -> None:
    """The kubelet wants its cgroup root to exist in every cgroup v1 controller."""
    if (CGROUP_BASE / "cgroup.controllers").exists():
        (CGROUP_BASE / CGROUP_ROOT).mkdir(exist_ok=True)  # cgroup v2: one hierarchy
        return
    for controller in CGROUP_BASE.iterdir():
        if not controller.is_dir() or controller.is_symlink():
            continue
        root = controller / CGROUP_ROOT
        root.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):  # a cpuset cgroup is unusable until these are set
            if (controller / name).exists() and not (root / name).read_text().strip():
                (root / name).write_text((controller / name).read_text())


def tear_down(run_dir: Path, before: dict[str, object], cleanup_commands: list[list[str]]) -> None:
    """Remove every trace of the cluster; safe to call more than once and after a crash."""
    kill_processes(run_dir)
    kill_cgroup_processes()
    for argv in cleanup_commands:
        if Path(argv[0]).exists():
            _run(*argv)
    remove_chains()
    remove_ipsets()
    for ns in set(list_netns()) - set(before.get("netns", [])):  # type: ignore[arg-type]
        if ns.startswith("cni-"):
            _run("ip", "netns", "delete", ns)
    unmount_below(run_dir)
    for device in (BRIDGE, NODE_DEVICE):
        if link_exists(device):
            _run("ip", "link", "delete", device)
    for veth in bridge_veths():
        _run("ip", "link", "delete", veth)
    remove_cgroups()
    for key, value in dict(before.get("sysctls", {})).items():  # type: ignore[arg-type]
        Path("/proc/sys", key).write_text(str(value))


def leftovers(run_dir: Path, before_netns: list[str] | None = None) -> list[str]:
    """Everything of the cluster still on the machine, one line each (empty when clean)."""
    found = [f"process {pid}: {cmd}" for pid, cmd in processes_of(run_dir)]
    found += [f"mount {m}" for m in mounts_below(run_dir)]
    if before_netns is not None:
        found += [f"netns {ns}" for ns in sorted(set(list_netns()) - set(before_netns)) if ns.startswith("cni-")]
    found += [f"link {d}" for d in (BRIDGE, NODE_DEVICE) if link_exists(d)]
    found += [f"veth {v}" for v in bridge_veths()]
    found += [f"iptables {c}" for c in chains()]
    found += [f"ipset {s}" for s in ipsets()]
    found += [f"cgroup {c}" for c in cgroup_dirs()]
    return found


def processes_of(run_dir: Path) -> list[tuple[int, str]]:
    """Processes whose command line names the run directory (components and container shims)."""
    marker = str(run_dir)
    result = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if marker in cmd:
            result.append((int(entry.name), cmd[:160]))
    return result


def kill_processes(run_dir: Path) -> None:
    for pid, _ in processes_of(run_dir):
        _signal(pid, signal.SIGKILL)


def kill_cgroup_processes() -> None:
    """Kill what runs in pod cgroups (containers whose shim is already gone)."""
    for directory in cgroup_dirs():
        procs = directory / "cgroup.procs"
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except OSError:
            continue
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def cgroup_dirs() -> list[Path]:
    """Every cgroup directory below the cluster's cgroup root, deepest first."""
    found: list[Path] = []
    if not CGROUP_BASE.exists():
        return found
    for controller in CGROUP_BASE.iterdir():
        root = controller / CGROUP_ROOT
        if root.is_dir():
            found += [Path(dirpath) for dirpath, _, _ in os.walk(root)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_cgroups() -> None:
    for directory in cgroup_dirs():
        try:
            directory.rmdir()
        except OSError as exc:
            log.warning("cannot remove cgroup %s: %s", directory, exc)


def mounts_below(run_dir: Path) -> list[str]:
    prefix = str(run_dir) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    return points


def unmount_below(run_dir: Path) -> None:
    for point in sorted(set(mounts_below(run_dir)), key=len, reverse=True):
        if _run("umount", point).returncode != 0:
            _run("umount", "-l", point)


def list_netns() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.exists() else []


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def bridge_veths() -> list[str]:
    """veth ends still attached to the cluster's bridge."""
    brif = Path("/sys/class/net", BRIDGE, "brif")
    return sorted(p.name for p in brif.iterdir()) if brif.exists() else []


def _tables(tool: str) -> dict[str, list[str]]:
    """iptables-save output per table."""
    proc = _run(f"{tool}-save")
    tables: dict[str, list[str]] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if line.startswith("*"):
            current = line[1:]
            tables[current] = []
        elif current:
            tables[current].append(line)
    return tables


def chains() -> list[str]:
    found = []
    for tool in ("iptables", "ip6tables"):
        for table, lines in _tables(tool).items():
            found += [f"{tool} -t {table} {line[1:].split()[0]}" for line in lines
                      if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES)]
    return found


def remove_chains(prefixes: tuple[str, ...] = CHAIN_PREFIXES) -> None:
    """Unhook and delete the chains the components wrote (all KUBE-*/CNI-* by default)."""
    for tool in ("iptables", "ip6tables"):
        for table, lines in _tables(tool).items():
            ours = [line[1:].split()[0] for line in lines if line.startswith(":") and line[1:].startswith(prefixes)]
            if not ours:
                continue
            for line in lines:
                parts = shlex.split(line)
                if parts[:1] == ["-A"] and not parts[1].startswith(prefixes) and any(p in ours for p in parts):
                    _run(tool, "-t", table, "-D", *parts[1:])
            for chain in ours:
                _run(tool, "-t", table, "-F", chain)
            for chain in ours:
                _run(tool, "-t", table, "-X", chain)


def ipsets() -> list[str]:
    proc = _run("ipset", "list", "-n")
    return [name for name in proc.stdout.split() if name.startswith(IPSET_PREFIXES)]


def remove_ipsets() -> None:
    for name in ipsets():
        _run("ipset", "destroy", name)
