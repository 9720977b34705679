"""Errors a user can act on: each carries one line that says what went wrong and what to do."""


class K8sSecError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class ProfileError(K8sSecError):
    """The profile file is malformed: names the file, the key and what was expected."""

    def __init__(self, path: object, key: str, expected: str, got: object = None) -> None:
        if got is None:
            super().__init__(f"profile {path}: key '{key}' is missing or empty; it must be {expected}")
        else:
            super().__init__(f"profile {path}: key '{key}' must be {expected} (got {got!r})")


class ClusterUnavailable(K8sSecError):
    """The cluster cannot be reached or used with the credentials given."""
