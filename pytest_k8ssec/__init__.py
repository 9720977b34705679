"""pytest-k8ssec: a pytest plugin that certifies how a Kubernetes cluster behaves on security."""

__version__ = "0.1.0"
