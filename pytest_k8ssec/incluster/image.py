"""The runner's image: a Debian root filesystem with Python, and the project's wheel with its dependencies.

Built here, from Debian packages (mmdebstrap) and PyPI, with no registry pull. The result is
one tar that `ctr images import`, `docker load` and `skopeo copy oci-archive:` all take.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import K8sSecError
from ..local.images import archive
from ..settings import cache_dir

SUITE = "bookworm"  # Debian 12: Python 3.11, the version the wheels below are chosen for
PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "ca-certificates")
PYTHON = "3.11"
SITE = "usr/local/lib/python3.11/dist-packages"  # on Debian's python3 path, apart from the packages' own
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
REFERENCE = f"k8ssec.local/pytest-k8ssec:{__version__}"
NOT_SOURCE = (".git", "build", "dist", "*.egg-info", "__pycache__", ".venv", "venv", ".tox", ".pytest-kind", ".k8ssec-report")
USER = "65532:65532"  # no root in the runner: the Job's pod passes the restricted Pod Security level
CONFIG = {
    "User": USER,
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"],
    "Entrypoint": ["python3", "-m", "pytest_k8ssec.incluster", "run"],
    "WorkingDir": "/tmp",
}


def build(project: Path, out_dir: Path) -> Path:
    """The image tar in `out_dir`, named by its source. The root filesystem is cached, and so is the last image,
    reused while the project's source is the same."""
    if not (project / "pyproject.toml").is_file():
        raise K8sSecError(f"{project} is not the project's checkout (no pyproject.toml): pass --project DIR")
    base = _root_filesystem()
    with tempfile.TemporaryDirectory(prefix="k8ssec-image-") as tmp:
        wheels, site, source = Path(tmp) / "wheels", Path(tmp) / "site", Path(tmp) / "source"
        # a copy: setuptools builds in the tree, and a stale build/ there would put deleted modules into the wheel
        shutil.copytree(project, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        cached = base.parent / f"image-{_digest(source, base.name)}.tar"
        if not cached.is_file():
            _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(source))
            _pip("install", "--target", str(site), "--python-version", PYTHON, "--only-binary=:all:", "--implementation", "cp",
                 *[f"--platform={p}" for p in PLATFORMS], *map(str, wheels.glob("*.whl")))
            for old in base.parent.glob("image-*.tar"):
                old.unlink()
            cached.write_bytes(archive(REFERENCE, CONFIG, [base.read_bytes(), _layer(site, SITE)]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pytest-k8ssec-{cached.stem.removeprefix('image-')}.tar"
    shutil.copyfile(cached, path)
    return path


def _digest(tree: Path, *extra: str) -> str:
    """The files of `tree` (names and contents) and `extra`, as one short hash."""
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _root_filesystem() -> Path:
    key = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    path = cache_dir() / "incluster" / f"rootfs-{SUITE}-{key}.tar"
    if path.is_file():
        return path
    if os.geteuid() != 0 or not Path("/usr/bin/mmdebstrap").exists():
        raise K8sSecError("the runner's root filesystem needs root and mmdebstrap: apt-get install mmdebstrap")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.tar")
    excluded = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")]
    proc = subprocess.run(["mmdebstrap", "--variant=minbase", *excluded, f"--include={','.join(PACKAGES)}", SUITE, str(partial)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise K8sSecError(f"mmdebstrap failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    partial.rename(path)
    return path


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise K8sSecError(f"pip {args[0]} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def _layer(directory: Path, prefix: str) -> bytes:
    """`directory`'s files below `prefix`, with fixed times and owners, sorted: the same input gives the same layer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            info = tar.gettarinfo(str(path), f"{prefix}/{path.relative_to(directory)}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() or info.mode & 0o111 else 0o644
            with open(path, "rb") if info.isfile() else contextlib.nullcontext() as f:
                tar.addfile(info, f)
    return buf.getvalue()
