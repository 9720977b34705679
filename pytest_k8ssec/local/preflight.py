"""What the machine must offer before the local cluster starts: Debian packages and free ports."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from . import images
from .layout import PORTS

APT_PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "iptables": "iptables",
    "ipset": "ipset",
    "conntrack": "conntrack",
    "ip": "iproute2",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/lib/cni/host-local": "containernetworking-plugins",
    "/usr/lib/cni/loopback": "containernetworking-plugins",
    "/usr/lib/cni/portmap": "containernetworking-plugins",
}


def missing_host_tools() -> list[str]:
    """Debian packages the local cluster needs that are not installed."""
    missing = {pkg for tool, pkg in APT_PACKAGES.items()
               if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))}
    missing.update(images.missing_host_binaries())
    return sorted(missing)


def ports_in_use() -> list[str]:
    busy = []
    for name, port in PORTS.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy
