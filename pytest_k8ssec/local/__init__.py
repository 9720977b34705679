"""The `local` provider: a real Kubernetes cluster built from source and run as host processes."""
