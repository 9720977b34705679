"""The suite run inside the cluster as a Kubernetes Job, for clusters a CI runner cannot reach.

`image` builds the runner's image, `manifest` prints the objects to apply, the Job runs the
suite with its service account (`job.run`), and `job.fetch` copies the reports out and removes
everything it made. `python -m pytest_k8ssec.incluster --help` drives them.
"""
