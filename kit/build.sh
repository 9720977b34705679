#!/bin/bash
# kit/build.sh: the offline kind + Calico image kit, built from this machine's sources only.
#
#   kit/build.sh [STAGE...]     default: all stages, in order
#
# Stages, each cached under $CACHE: Go binaries and rootfs tarballs by existence; docker images by a
# kit.stamp label (hash of the build context + base image id); the node rootfs/image by content hash;
# pushes are skipped when the registry holds the same config digest. Times go to $CACHE/timings.log.
#   tools     kind v0.33.0 from the Go module proxy
#   k8s       kubeadm + kubectl (and the server binaries, unless the project's cache has them)
#   etcd      etcd v3.7.0 (kubeadm's 3.7.0-0) from the proxy
#   coredns   CoreDNS v1.14.6 from the proxy
#   pause     pause 3.10.2 from kubernetes' build/pause/linux/pause.c (gcc -static)
#   calico    calico-node, calico (cni, also calico-ipam), install, kube-controllers, check-status
#   rootfs    Debian bookworm root filesystems (mmdebstrap): node, net (iptables/ipset/runit), static
#   images    docker images under upstream names (needs dockerd: dockerd-up.sh)
#   registry  the registry container (kind-registry, 127.0.0.1:5000) + push of every non-node image
#   node      the kind node image kindest/node:v1.37.2-kit with the kubeadm images preloaded
#   manifest  calico-vxlan.yaml with felix's one setting for this build, for --k8s-sec-calico-manifest
#
# Needs: go, mmdebstrap, docker.io (dockerd 20.10), docker-registry, busybox-static, jq, gcc.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIT=${KIT:-${K8SSEC_CACHE:-$HOME/.cache/pytest-k8ssec}/kit}
CACHE=$KIT/cache
K8S_VERSION=${K8S_VERSION:-v1.37.2}
KIND_VERSION=v0.33.0
ETCD_VERSION=v3.7.0            # kubeadm v1.37: etcd 3.7.0-0
COREDNS_VERSION=v1.14.6        # kubeadm v1.37: coredns/coredns:v1.14.6
PAUSE_VERSION=3.10.2           # kubeadm v1.37: pause:3.10.2
CALICO_VERSION=v3.31.3
CALICO_TARBALL=${CALICO_TARBALL:-$HERE/../../shared/calico/calico-v3.31.3.tar.gz}
PROJECT_K8S_BIN=${PROJECT_K8S_BIN:-${K8SSEC_CACHE:-$HOME/.cache/pytest-k8ssec}/bin/kubernetes-$K8S_VERSION}
REGISTRY_NAME=${REGISTRY_NAME:-kind-registry}
REGISTRY_PORT=${REGISTRY_PORT:-5000}
NODE_IMAGE=${NODE_IMAGE:-kindest/node:$K8S_VERSION-kit}
SUITE=bookworm

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
BIN=$CACHE/bin
TIMINGS=$CACHE/timings.log
mkdir -p "$CACHE" "$BIN" "$KIT/logs"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
trap 'log "ERROR: exit $? at line $LINENO: $BASH_COMMAND"' ERR
die() { log "ERROR: $*"; exit 1; }
# timed NAME CMD...: run CMD, append "NAME seconds" to the timings log
timed() {
  local name=$1 start rc; shift
  start=$EPOCHREALTIME
  "$@"; rc=$?
  printf '%s %s %s\n' "$(date -Is)" "$name" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')" >>"$TIMINGS"
  return $rc
}
# cached NAME OUTPUT... -- CMD...: skip CMD when every OUTPUT exists
cached() {
  local name=$1 outs=() o missing=0; shift
  while [ "$1" != "--" ]; do outs+=("$1"); shift; done; shift
  for o in "${outs[@]}"; do [ -e "$o" ] || missing=1; done
  if [ $missing = 0 ]; then log "$name: cached"; printf '%s %s cached\n' "$(date -Is)" "$name" >>"$TIMINGS"; return 0; fi
  log "$name: building"
  timed "$name" "$@"
}

# ------------------------------------------------------------------ Go builds
gomod_dir() { go mod download -json "$1" | jq -r .Dir; }

build_kind() {
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kind@$KIND_VERSION"
  mv "$tmp/kind" "$BIN/kind-$KIND_VERSION"; rmdir "$tmp"
}

k8s_ldflags() {
  local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local f="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "$f"
}

# go.mod for one Kubernetes release: its go/godebug lines, every ./staging module replaced by v0.Y.Z
k8s_gomod() {
  local up published; up=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .GoMod)
  published=v0.$(echo "$K8S_VERSION" | cut -d. -f2,3)
  echo "module k8ssec.local/kubernetes"; echo
  grep -E '^go [0-9]' "$up"; grep -E '^godebug ' "$up" || true; echo
  echo "require k8s.io/kubernetes $K8S_VERSION"; echo; echo "replace ("
  sed -nE 's#^\s*(k8s\.io/[A-Za-z0-9._-]+)\s*=>\s*\./staging/.*#\t\1 => \1 '"$published"'#p' "$up"
  echo ")"
}

build_k8s() {
  local src=$CACHE/src/kubernetes-$K8S_VERSION out=$BIN/kubernetes-$K8S_VERSION cmds=(kubeadm kubectl) c
  mkdir -p "$src" "$out"
  k8s_gomod >"$src/go.mod"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if [ -x "$PROJECT_K8S_BIN/$c" ]; then cp "$PROJECT_K8S_BIN/$c" "$out/$c"; else cmds+=("$c"); fi
  done
  log "k8s: go build ${cmds[*]}"
  (cd "$src" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$out.tmp/" "${cmds[@]/#/k8s.io/kubernetes/cmd/}")
  mv "$out.tmp"/* "$out/"; rmdir "$out.tmp"
  "$out/kubeadm" version -o short | grep -qx "$K8S_VERSION" || die "kubeadm does not report $K8S_VERSION"
}

# build_module NAME MODULE@VERSION PACKAGE [LDFLAGS]: a main package of a module from the proxy
build_module() {
  local name=$1 modver=$2 pkg=$3 ldflags=${4:-"-s -w"} src=$CACHE/src/$1
  rm -rf "$src"; mkdir -p "$src"
  (cd "$src" && printf 'module k8ssec.local/%s\n\ngo 1.26\n' "$name" >go.mod && go get "$modver" >/dev/null 2>&1 \
     && go build -trimpath -ldflags "$ldflags" -o "$BIN/$name.tmp" "$pkg")
  mv "$BIN/$name.tmp" "$BIN/$name"
}

build_etcd() {
  # etcd's own release builds stamp nothing else; the server module's main package is etcd itself
  build_module etcd-$ETCD_VERSION "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
  "$BIN/etcd-$ETCD_VERSION" --version | sed -n 1p   # not head: SIGPIPE + pipefail
}

build_coredns() {
  build_module coredns-$COREDNS_VERSION "github.com/coredns/coredns@$COREDNS_VERSION" github.com/coredns/coredns
  "$BIN/coredns-$COREDNS_VERSION" -version | sed -n 1p
}

build_pause() {
  local d; d=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .Dir)
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$BIN/pause-$PAUSE_VERSION.tmp" "$d/build/pause/linux/pause.c"
  strip "$BIN/pause-$PAUSE_VERSION.tmp"; mv "$BIN/pause-$PAUSE_VERSION.tmp" "$BIN/pause-$PAUSE_VERSION"
}

calico_src() {
  local src=$CACHE/src/calico-$CALICO_VERSION
  if [ ! -d "$src" ]; then
    mkdir -p "$src.tmp"; tar -xzf "$CALICO_TARBALL" -C "$src.tmp" --strip-components=1; mv "$src.tmp" "$src"
  fi
  echo "$src"
}

build_calico() {
  local src out=$BIN/calico-$CALICO_VERSION ld
  src=$(calico_src); mkdir -p "$out.tmp"
  # the version calico-node/kube-controllers report (Makefile: buildinfo + felix's version vars)
  ld="-s -w -X github.com/projectcalico/calico/pkg/buildinfo.Version=$CALICO_VERSION -X github.com/projectcalico/calico/pkg/buildinfo.GitRevision=2e3c880bcabff580ddd7a08340878ede207f37be"
  (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out.tmp/" ./cni-plugin/cmd/calico ./cni-plugin/cmd/install \
      ./kube-controllers/cmd/kube-controllers ./kube-controllers/cmd/check-status ./kube-controllers/cmd/wrapper \
      ./node/cmd/mountns)
  (cd "$src" && go build -trimpath -ldflags "$ld" -o "$out.tmp/calico-node" ./node/cmd/calico-node)
  cp "$out.tmp/calico" "$out.tmp/calico-ipam"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# ------------------------------------------------------------------ root filesystems
MMDEB_OPTS=(--variant=minbase --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
NODE_PKGS=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins
NET_PKGS=iptables,nftables,ipset,iproute2,conntrack,kmod,procps,runit,iputils-ping,net-tools,ca-certificates,bird

rootfs_debian() { # NAME PKGS: a tarball of a Debian root filesystem
  mmdebstrap "${MMDEB_OPTS[@]}" --include="$2" "$SUITE" "$CACHE/rootfs/$1.tar.tmp.tar" >"$KIT/logs/mmdebstrap-$1.log" 2>&1
  mv "$CACHE/rootfs/$1.tar.tmp.tar" "$CACHE/rootfs/$1.tar"
}

rootfs_static() { # distroless-like: passwd/group, tmp, CA bundle, nsswitch (for static Go binaries)
  local r; r=$(mktemp -d)
  mkdir -p "$r"/{etc/ssl/certs,tmp,root,home/nonroot,var/run}; chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$r/etc/group"
  echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  tar --numeric-owner -C "$r" -cf "$CACHE/rootfs/static.tar" .; rm -rf "$r"
}

rootfs_busybox() { # Debian's busybox-static with every applet linked, like the busybox image
  local r a; r=$(mktemp -d)
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home,var/spool/mail}; chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list-full); do [ -e "$r/$a" ] || ln "$r/bin/busybox" "$r/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
  tar --numeric-owner -C "$r" -cf "$CACHE/rootfs/busybox.tar" .; rm -rf "$r"
}

rootfs_registry() { # Debian's docker-registry binary with its libc, no auth, storage in a volume
  local r; r=$(mktemp -d)
  mkdir -p "$r"/{usr/bin,lib/x86_64-linux-gnu,lib64,etc/docker/registry,var/lib/registry,tmp}
  cp /usr/bin/docker-registry "$r/usr/bin/"
  cp -L /lib/x86_64-linux-gnu/libc.so.6 "$r/lib/x86_64-linux-gnu/"; cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
  cat >"$r/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log: {level: warn, fields: {service: registry}}
storage: {filesystem: {rootdirectory: /var/lib/registry}, delete: {enabled: true}}
http: {addr: ":5000"}
EOF
  tar --numeric-owner -C "$r" -cf "$CACHE/rootfs/registry.tar" .; rm -rf "$r"
}

stage_rootfs() {
  mkdir -p "$CACHE/rootfs"
  cached rootfs-node "$CACHE/rootfs/node.tar" -- rootfs_debian node "$NODE_PKGS"
  cached rootfs-net "$CACHE/rootfs/net.tar" -- rootfs_debian net "$NET_PKGS"
  cached rootfs-static "$CACHE/rootfs/static.tar" -- rootfs_static
  cached rootfs-busybox "$CACHE/rootfs/busybox.tar" -- rootfs_busybox
  cached rootfs-registry "$CACHE/rootfs/registry.tar" -- rootfs_registry
}

# ------------------------------------------------------------------ images
need_docker() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no dockerd answers: run $HERE/dockerd-up.sh"; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
image_stamp() { docker image inspect -f '{{index .Config.Labels "kit.stamp"}}' "$1" 2>/dev/null || true; }
# dir_stamp DIR: hash of every file's content in a build context (plus the base image's id)
dir_stamp() {
  local from; from=$(awk '/^FROM /{print $2; exit}' "$1/Dockerfile")
  { [ "$from" = scratch ] || docker image inspect -f '{{.Id}}' "$from"
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); } | md5sum | cut -c1-32
}

# import_base TAG TARBALL [CHANGE...]: a one-layer image from a root filesystem tarball
import_base() {
  local tag=$1 tar=$2 st c args=(); shift 2
  st=$({ md5sum <"$tar"; printf '%s\n' "$@"; } | md5sum | cut -c1-32)
  [ "$(image_stamp "$tag")" = "$st" ] && return 0
  for c in "$@"; do args+=(--change "$c"); done
  docker import "${args[@]}" --change "LABEL kit.stamp=$st" "$tar" "$tag" >/dev/null
  log "imported $tag"
}

# dbuild TAG DIR: docker build of a context directory holding a Dockerfile
# dbuild TAG DIR: docker build of a context directory, skipped when an image with the same stamp exists
dbuild() {
  local st; st=$(dir_stamp "$2")
  [ "$(image_stamp "$1")" = "$st" ] && return 0
  DOCKER_BUILDKIT=0 docker build -q --label "kit.stamp=$st" -t "$1" "$2" >/dev/null 2>>"$KIT/logs/docker-build.log"
  log "built $1"
}

ctx() { local d=$CACHE/ctx/$1; rm -rf "$d"; mkdir -p "$d"; echo "$d"; }

image_k8s() { # kube-apiserver, kube-controller-manager, kube-scheduler: static binary on the static base
  local name=$1 d; d=$(ctx "$name")
  cp "$BIN/kubernetes-$K8S_VERSION/$name" "$d/"
  cat >"$d/Dockerfile" <<EOF
FROM kit/static-base:1
COPY $name /usr/local/bin/$name
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/usr/local/bin/$name"]
EOF
  dbuild "registry.k8s.io/$name:$K8S_VERSION" "$d"
}

image_kube_proxy() { # needs iptables (Debian base)
  local d; d=$(ctx kube-proxy)
  cp "$BIN/kubernetes-$K8S_VERSION/kube-proxy" "$d/"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/net-base:1
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
EOF
  dbuild "registry.k8s.io/kube-proxy:$K8S_VERSION" "$d"
}

image_etcd() {
  local d; d=$(ctx etcd)
  cp "$BIN/etcd-$ETCD_VERSION" "$d/etcd"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/static-base:1
COPY etcd /usr/local/bin/etcd
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  dbuild "registry.k8s.io/etcd:${ETCD_VERSION#v}-0" "$d"
}

image_coredns() {
  local d; d=$(ctx coredns)
  cp "$BIN/coredns-$COREDNS_VERSION" "$d/coredns"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/static-base:1
COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
EOF
  dbuild "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$d"
}

image_pause() {
  local d; d=$(ctx pause)
  cp "$BIN/pause-$PAUSE_VERSION" "$d/pause"
  cat >"$d/Dockerfile" <<'EOF'
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
  dbuild "registry.k8s.io/pause:$PAUSE_VERSION" "$d"
}

image_calico() {
  local src b=$BIN/calico-$CALICO_VERSION d; src=$(calico_src)
  # calico/node: Debian net base + calico-node + node/filesystem (runit services), CMD start_runit
  d=$(ctx calico-node)
  cp -a "$src/node/filesystem" "$d/filesystem"; cp "$b/calico-node" "$b/mountns" "$d/"
  # node/Makefile pulls confd's config and templates into the image (used by the BIRD backend)
  cp -r "$src/confd/etc/calico/confd/conf.d" "$src/confd/etc/calico/confd/templates" "$d/filesystem/etc/calico/confd/"
  cp "$src/LICENSE.md" "$d/LICENSE"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/net-base:1
COPY filesystem/etc/ /etc/
COPY filesystem/usr/ /usr/
COPY filesystem/sbin/ /usr/sbin/
COPY calico-node mountns /bin/
COPY LICENSE /licenses/LICENSE
RUN chmod u+s /bin/calico-node /bin/mountns && mkdir -p /var/lib/calico /var/run/calico /var/log/calico \
 && ln -sf /usr/sbin/bird /bin/bird && ln -sf /usr/sbin/bird6 /bin/bird6 && touch /in-the-container
ENV SVDIR=/etc/service/enabled
CMD ["start_runit"]
EOF
  [ -d "$d/filesystem/usr" ] || { mkdir -p "$d/filesystem/usr"; }
  dbuild "quay.io/calico/node:$CALICO_VERSION" "$d"
  # calico/cni: calico, calico-ipam, install + Debian's CNI plugins the manifest's conflist uses
  d=$(ctx calico-cni); mkdir -p "$d/bin"
  cp "$b/calico" "$b/calico-ipam" "$b/install" "$d/bin/"
  cp /usr/lib/cni/{bandwidth,host-local,loopback,portmap,tuning} "$d/bin/"
  cp "$src/LICENSE.md" "$d/LICENSE"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/net-base:1
COPY LICENSE /licenses/LICENSE
COPY bin/ /opt/cni/bin/
ENV PATH=/opt/cni/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/cni/bin
CMD ["/opt/cni/bin/install"]
EOF
  dbuild "quay.io/calico/cni:$CALICO_VERSION" "$d"
  # calico/kube-controllers
  d=$(ctx calico-kube-controllers)
  cp "$b/kube-controllers" "$b/check-status" "$b/wrapper" "$d/"; cp "$src/LICENSE.md" "$d/LICENSE"
  cat >"$d/Dockerfile" <<'EOF'
FROM kit/net-base:1
COPY LICENSE /licenses/LICENSE
COPY kube-controllers check-status wrapper /usr/bin/
RUN mkdir /status /profiles && touch /status/status.json /profiles/mem.pprof /profiles/cpu.pprof \
 && chown 999 /status/status.json /profiles/mem.pprof /profiles/cpu.pprof
USER 999
ENTRYPOINT ["/usr/bin/wrapper", "/usr/bin/kube-controllers"]
EOF
  dbuild "quay.io/calico/kube-controllers:$CALICO_VERSION" "$d"
}

image_busybox() { import_base docker.io/library/busybox:1.36 "$CACHE/rootfs/busybox.tar" 'CMD ["sh"]'; }
image_registry() {
  import_base kit/registry:2.8.2 "$CACHE/rootfs/registry.tar" \
    'ENTRYPOINT ["/usr/bin/docker-registry","serve","/etc/docker/registry/config.yml"]' 'EXPOSE 5000'
}

KUBEADM_IMAGES=()
kubeadm_images() { mapfile -t KUBEADM_IMAGES < <("$BIN/kubernetes-$K8S_VERSION/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null); }
CALICO_IMAGES=(quay.io/calico/node:$CALICO_VERSION quay.io/calico/cni:$CALICO_VERSION quay.io/calico/kube-controllers:$CALICO_VERSION)
EXTRA_IMAGES=(docker.io/library/busybox:1.36)

stage_images() {
  need_docker
  import_base kit/static-base:1 "$CACHE/rootfs/static.tar"
  import_base kit/net-base:1 "$CACHE/rootfs/net.tar"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do timed "image-$c" image_k8s "$c"; done
  timed image-kube-proxy image_kube_proxy
  timed image-etcd image_etcd
  timed image-coredns image_coredns
  timed image-pause image_pause
  timed image-calico image_calico
  timed image-busybox image_busybox; image_registry
  rm -rf "$CACHE/ctx"
  kubeadm_images
  for c in "${KUBEADM_IMAGES[@]}"; do have_image "$c" || die "kubeadm wants $c, which the kit does not build"; done
  docker image prune -f >/dev/null   # the untagged images that rebuilds left behind
}

# ------------------------------------------------------------------ registry
registry_up() {
  need_docker
  if [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null)" != true ]; then
    docker rm -f "$REGISTRY_NAME" >/dev/null 2>&1 || true
    mkdir -p "$CACHE/registry"
    docker run -d --restart=no --name "$REGISTRY_NAME" -p "127.0.0.1:$REGISTRY_PORT:5000" \
      -v "$CACHE/registry:/var/lib/registry" kit/registry:2.8.2 >/dev/null
  fi
  for i in $(seq 40); do curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null && return 0; sleep 0.25; done
  die "registry did not answer on 127.0.0.1:$REGISTRY_PORT"
}

# upstream name -> repository path in the mirror (the path the registry host would serve)
mirror_path() { local n=$1; n=${n#registry.k8s.io/}; n=${n#quay.io/}; n=${n#docker.io/}; echo "$n"; }

push_image() {
  local img=$1 path id local_id remote
  path=$(mirror_path "$img")
  local_id=$(docker image inspect -f '{{.Id}}' "$img")
  # skip the push when the registry already holds this exact image (config digest = image id)
  remote=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$REGISTRY_PORT/v2/${path%:*}/manifests/${path##*:}" | jq -r '.config.digest // empty' 2>/dev/null || true)
  if [ "$remote" = "$local_id" ]; then log "push $img: registry has it"; return 0; fi
  docker tag "$img" "127.0.0.1:$REGISTRY_PORT/$path"
  docker push -q "127.0.0.1:$REGISTRY_PORT/$path" >/dev/null
  docker rmi "127.0.0.1:$REGISTRY_PORT/$path" >/dev/null
  log "pushed $img"
}

stage_registry() {
  registry_up; kubeadm_images
  local i
  for i in "${KUBEADM_IMAGES[@]}" "${CALICO_IMAGES[@]}" "${EXTRA_IMAGES[@]}"; do timed "push-$(basename "${i%:*}")" push_image "$i"; done
}

# ------------------------------------------------------------------ node image
node_rootfs() { # the node root filesystem: Debian + kind's base files + binaries, as a tarball
  local r=$CACHE/ctx/node-rootfs kind f
  kind=$(gomod_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files
  rm -rf "$r"; mkdir -p "$r"; tar -C "$r" -xf "$CACHE/rootfs/node.tar"
  # kind's static files (images/base/Dockerfile COPY lines), with their modes
  install -d -m 0755 "$r/kind" "$r/kind/bin" "$r/usr/local/bin" "$r/etc/containerd" "$r/etc/systemd/system/kubelet.service.d"
  install -m 0755 "$kind"/usr/local/bin/* "$r/usr/local/bin/"
  install -m 0644 "$kind/kind/README.txt" "$r/kind/"
  install -m 0755 "$kind"/kind/bin/* "$r/kind/bin/"
  install -m 0644 "$kind/etc/crictl.yaml" "$r/etc/"
  install -m 0644 "$kind"/etc/default/* "$r/etc/default/"
  install -m 0644 "$kind"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  install -m 0644 "$kind"/etc/systemd/system/*.service "$kind"/etc/systemd/system/*.slice "$r/etc/systemd/system/"
  install -m 0644 "$kind"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
  rm -f "$r/etc/systemd/system/containerd-fuse-overlayfs.service"   # no fuse-overlayfs snapshotter here
  # containerd config: kind's, minus the fuse-overlayfs proxy plugin; the pause image kubeadm wants;
  # restrict_oom_score_adj = true (root cannot lower oom_score_adj on these machines)
  sed -e '/^\[proxy_plugins\]/,/^$/d' \
      -e "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:$PAUSE_VERSION\"#" \
      -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
      "$kind/etc/containerd/config.toml" >"$r/etc/containerd/config.toml"
  /usr/bin/ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
  # Debian's containerd/runc/CNI plugins at the paths kind's units and kubelet use
  ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
  ln -sf /usr/bin/ctr "$r/usr/local/bin/ctr"
  ln -sf /usr/bin/containerd-shim-runc-v2 "$r/usr/local/bin/containerd-shim-runc-v2"
  mkdir -p "$r/usr/local/sbin" "$r/opt/cni/bin"; ln -sf /usr/sbin/runc "$r/usr/local/sbin/runc"
  cp "$r"/usr/lib/cni/{host-local,loopback,ptp,portmap,bandwidth,bridge,tuning} "$r/opt/cni/bin/"
  # Kubernetes binaries, the way kind's node-image builder places them
  install -m 0755 "$BIN/kubernetes-$K8S_VERSION/kubelet" "$r/usr/bin/kubelet"
  install -m 0755 "$BIN/kubernetes-$K8S_VERSION/kubeadm" "$BIN/kubernetes-$K8S_VERSION/kubectl" "$r/usr/bin/"
  echo "$K8S_VERSION" >"$r/kind/version"
  mkdir -p "$r/kind/manifests" "$r/etc/kubernetes/manifests"
  # kind base Dockerfile RUN steps
  find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
        "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
        "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  rm -rf "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/*
  tar --numeric-owner -C "$r" -cf "$CACHE/node-rootfs.tar.tmp" .; mv "$CACHE/node-rootfs.tar.tmp" "$CACHE/node-rootfs.tar"
  rm -rf "$r"
}

node_image() {
  need_docker; kubeadm_images
  local d base=kit/node-rootfs:$K8S_VERSION bc=kit-node-build i
  docker rmi "$base" >/dev/null 2>&1 || true
  docker import "$CACHE/node-rootfs.tar" "$base" >/dev/null
  # docker 20.10's `import --change` refuses STOPSIGNAL: a tiny build sets the metadata kind's image has
  d=$(ctx node)
  cat >"$d/Dockerfile" <<EOF
FROM $base
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
  dbuild kit/node-unloaded:$K8S_VERSION "$d"
  # preload the kubeadm images into containerd's k8s.io namespace, as kind's builder does:
  # a build container runs containerd, `ctr images import` each docker-saved image, then commit
  docker rm -f "$bc" >/dev/null 2>&1 || true
  docker run -d --name "$bc" --privileged --security-opt seccomp=unconfined --entrypoint=sleep \
    kit/node-unloaded:$K8S_VERSION infinity >/dev/null
  docker exec "$bc" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 & for i in $(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1'
  for i in "${KUBEADM_IMAGES[@]}"; do
    docker save "$i" | docker exec -i "$bc" ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
  done
  docker exec "$bc" ctr --namespace=k8s.io images ls -q | sort >"$CACHE/node-images.txt"
  docker exec "$bc" bash -c 'pkill containerd; for i in $(seq 50); do pgrep -x containerd >/dev/null || exit 0; sleep 0.2; done'
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change "LABEL kit.stamp=${NODE_STAMP:-}" "$bc" "$NODE_IMAGE" >/dev/null
  docker rm -f "$bc" >/dev/null
  docker rmi kit/node-unloaded:$K8S_VERSION "$base" >/dev/null 2>&1 || true
  for i in "${KUBEADM_IMAGES[@]}"; do grep -qx "$i" "$CACHE/node-images.txt" || die "node image lacks $i"; done
}

node_rootfs_inputs() { # what the node root filesystem is made of
  local kind; kind=$(gomod_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files
  { md5sum "$CACHE/rootfs/node.tar" "$BIN/kubernetes-$K8S_VERSION"/{kubelet,kubeadm,kubectl} | cut -d' ' -f1   # content, not paths
    (cd "$kind" && find . -type f -print0 | sort -z | xargs -0 md5sum)
    sed -n '/^node_rootfs() {/,/^}/p' "${BASH_SOURCE[0]}"; } | md5sum | cut -c1-32
}
stage_node() {
  need_docker; kubeadm_images
  local st img_st i
  st=$(node_rootfs_inputs)
  if [ -f "$CACHE/node-rootfs.tar" ] && [ "$(cat "$CACHE/node-rootfs.stamp" 2>/dev/null)" = "$st" ]; then
    log "node-rootfs: cached"
  else
    log "node-rootfs: building"; timed node-rootfs node_rootfs; echo "$st" >"$CACHE/node-rootfs.stamp"
  fi
  img_st=$({ echo "$st"; for i in "${KUBEADM_IMAGES[@]}"; do docker image inspect -f '{{.Id}}' "$i"; done; } | md5sum | cut -c1-32)
  if [ "$(image_stamp "$NODE_IMAGE")" = "$img_st" ]; then
    log "node image: cached"; printf '%s node-image cached\n' "$(date -Is)" >>"$TIMINGS"
  else
    log "node image: building"; NODE_STAMP=$img_st timed node-image node_image
  fi
}

# ------------------------------------------------------------------ Calico manifest
# calico-vxlan.yaml from the shared source, with the one setting felix needs when built with
# CGO_ENABLED=0 (a libbpf stub panics at start-up otherwise); pass it to --k8s-sec-calico-manifest
stage_manifest() {
  python3 - "$(calico_src)/manifests/calico-vxlan.yaml" "$KIT/calico-vxlan.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d.get("kind") == "DaemonSet" and d["metadata"]["name"] == "calico-node":
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "calico-node":
                c["env"] = [e for e in c["env"] if e["name"] != "FELIX_DebugSkipCTLBCleanup"]
                c["env"].append({"name": "FELIX_DebugSkipCTLBCleanup", "value": "true"})
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
  log "manifest: $KIT/calico-vxlan.yaml"
}

# ------------------------------------------------------------------ main
stage_tools()   { cached kind "$BIN/kind-$KIND_VERSION" -- build_kind; }
stage_k8s()     { cached k8s "$BIN/kubernetes-$K8S_VERSION/kubeadm" "$BIN/kubernetes-$K8S_VERSION/kubectl" "$BIN/kubernetes-$K8S_VERSION/kubelet" -- build_k8s; }
stage_etcd()    { cached etcd "$BIN/etcd-$ETCD_VERSION" -- build_etcd; }
stage_coredns() { cached coredns "$BIN/coredns-$COREDNS_VERSION" -- build_coredns; }
stage_pause()   { cached pause "$BIN/pause-$PAUSE_VERSION" -- build_pause; }
stage_calico()  { cached calico "$BIN/calico-$CALICO_VERSION/calico-node" "$BIN/calico-$CALICO_VERSION/wrapper" -- build_calico; }

main() {
  local stages=(tools k8s etcd coredns pause calico rootfs images registry node manifest) s start
  [ $# -gt 0 ] && stages=("$@")
  start=$(date +%s)
  for s in "${stages[@]}"; do "stage_$s"; done
  log "done (${stages[*]}) in $(( $(date +%s) - start ))s"
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
