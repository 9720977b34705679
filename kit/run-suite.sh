#!/bin/bash
# kit/run-suite.sh [PYTEST ARGS...]: the conformance suite on kind + Calico, offline, from the kit.
# kit/with-kit.sh does the setup and the cleanup; the suite runs as
#   pytest --k8s-sec --k8s-sec-cluster=kind --k8s-sec-registry-mirror kind-registry:5000 ...
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8SSEC_PHASE=suite exec "$HERE/with-kit.sh" sh -c 'exec python3 -m pytest --k8s-sec $K8SSEC_KIND_ARGS -p no:cacheprovider "$@"' \
  run-suite "$@"
