"""Pod images built from Debian's static binaries, written as tarballs `ctr images import` accepts.

No registry is reachable here, so the local cluster's images are made from busybox-static and
catatonit: each tar is an OCI image layout and a docker-archive at once, built reproducibly
(fixed times, sorted entries) so its digest only changes when its inputs do.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import K8sSecError

log = logging.getLogger(__name__)

BUSYBOX = Path("/bin/busybox")
CATATONIT = Path("/usr/bin/catatonit")
HOST_BINARIES = {BUSYBOX: "busybox-static", CATATONIT: "catatonit"}
APPLETS = ["sh", "wget", "timeout", "id", "cat", "ls", "ip", "ifconfig", "sleep", "touch", "echo", "nc", "hostname",
           "env", "httpd", "grep", "head", "printf", "kill", "true", "false", "mkdir", "rm", "ps", "sed", "tr", "wc"]
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:3000:app:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\napp:x:3000:\nnobody:x:65534:\n"
SLEEP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
HTTPD = ["/bin/sh", "-c", "trap 'kill $a $b; exit 0' TERM; httpd -f -p 8080 -h /www & a=$!; "
         "httpd -f -p 8081 -h /www & b=$!; wait"]


@dataclass(frozen=True)
class ImageSpec:
    """One image: its reference, default user, command, ports and whether it carries busybox."""

    reference: str
    user: str = "0:0"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    busybox: bool = True
    www: bool = False
    extra: dict[str, str] = field(default_factory=dict)


IMAGES: dict[str, ImageSpec] = {
    "pause": ImageSpec("k8ssec.local/pause:1", user="65535:65535", entrypoint=("/catatonit", "-P"), busybox=False),
    "busybox": ImageSpec("k8ssec.local/busybox:1", cmd=tuple(SLEEP)),
    "busybox-nonroot": ImageSpec("k8ssec.local/busybox-nonroot:1", user="1000:3000", cmd=tuple(SLEEP)),
    "httpd": ImageSpec("k8ssec.local/httpd:1", user="65534:65534", cmd=tuple(HTTPD), ports=(8080, 8081), www=True),
}


def missing_host_binaries() -> list[str]:
    """Debian packages to install for the images' binaries."""
    return sorted({pkg for path, pkg in HOST_BINARIES.items() if not path.exists()})


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode, info.type, info.linkname = mode, kind, link
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def layer(spec: ImageSpec) -> bytes:
    """The image's single layer, byte-for-byte reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "root"):
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        _add(tar, "etc/passwd", data=PASSWD.encode())
        _add(tar, "etc/group", data=GROUP.encode())
        if spec.busybox:
            _add(tar, "bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)
            for applet in sorted(APPLETS):
                _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        else:
            _add(tar, "catatonit", data=CATATONIT.read_bytes(), mode=0o755)
        if spec.www:
            _add(tar, "www", kind=tarfile.DIRTYPE, mode=0o755)
            _add(tar, "www/index.html", data=b"k8ssec\n")
    return buf.getvalue()


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def image_tar(spec: ImageSpec) -> bytes:
    """One of the local cluster's images, from its spec."""
    config = {
        "User": spec.user,
        "Env": ["PATH=/bin:/usr/bin"],
        "Entrypoint": list(spec.entrypoint) or None,
        "Cmd": list(spec.cmd) or None,
        "WorkingDir": "/",
        "ExposedPorts": {f"{p}/tcp": {} for p in spec.ports} or None,
    }
    return archive(spec.reference, config, [layer(spec)])


def archive(reference: str, config: dict, layers: list[bytes]) -> bytes:
    """One tar that is both an OCI layout (index.json) and a docker-archive (manifest.json): `ctr images import`,
    `docker load` and `skopeo copy oci-archive:` all take it. `config` is the image config's `config` part."""
    blobs = [_blob(data) for data in layers]
    image = {"architecture": "amd64", "os": "linux", "config": config,
             "rootfs": {"type": "layers", "diff_ids": [digest for digest, _ in blobs]}}
    config_digest, config_data = _blob(json.dumps(image, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config_data)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}
                   for digest, data in blobs],
    }
    manifest_digest, manifest_data = _blob(json.dumps(manifest, sort_keys=True).encode())
    tag = reference.rsplit(":", 1)[1]
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": manifest["mediaType"], "digest": manifest_digest, "size": len(manifest_data),
        "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": tag}}]}
    docker = [{"Config": f"blobs/sha256/{config_digest[7:]}", "RepoTags": [reference],
               "Layers": [f"blobs/sha256/{digest[7:]}" for digest, _ in blobs]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for digest, data in sorted(dict([*blobs, (config_digest, config_data), (manifest_digest, manifest_data)]).items()):
            _add(tar, f"blobs/sha256/{digest[7:]}", data=data)
        _add(tar, "index.json", data=json.dumps(index, sort_keys=True).encode())
        _add(tar, "manifest.json", data=json.dumps(docker, sort_keys=True).encode())
        _add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')
    return out.getvalue()


def build_all(out_dir: Path) -> dict[str, Path]:
    """Every image as a tar in out_dir, named by the hash of its content (rebuilt when inputs change)."""
    missing = missing_host_binaries()
    if missing:
        raise K8sSecError(f"the local cluster's images need Debian packages: apt-get install {' '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, spec in IMAGES.items():
        data = image_tar(spec)
        path = out_dir / f"{name}-{hashlib.sha256(data).hexdigest()[:12]}.tar"
        if not path.exists():
            path.write_bytes(data)
        paths[name] = path
    return paths


def import_images(paths: list[Path], address: str) -> None:
    """Import into containerd's k8s.io namespace and pin the pause image against image GC."""
    for path in paths:
        proc = subprocess.run(["ctr", "--address", address, "-n", "k8s.io", "images", "import", str(path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise K8sSecError(f"importing image {path.name} into containerd failed: {proc.stderr.strip()}")
    pinned = subprocess.run(["ctr", "--address", address, "-n", "k8s.io", "images", "label", IMAGES["pause"].reference,
                             "io.cri-containerd.pinned=pinned"], capture_output=True, text=True)
    if pinned.returncode != 0:
        raise K8sSecError(f"pinning the pause image failed: {pinned.stderr.strip()}")
