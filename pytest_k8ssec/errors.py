"""Errors a user can act on: each carries one line that says what went wrong and what to do."""


def must(key: str, expected: str, got: object = None) -> str:
    """`key: must be <expected> (got <what it was>)`, or `is missing or empty` for None: the one wording of every
    line about a key of the user's files."""
    where = f"{key}: " if key else ""
    if got is None:
        return f"{where}is missing or empty; it must be {expected}"
    text = repr(got)
    return f"{where}must be {expected} (got {text if len(text) <= 80 else text[:77] + '...'})"


class K8sSecError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class ProfileError(K8sSecError):
    """The profile file is malformed: names the file, the key and what was expected."""

    def __init__(self, path: object, key: str, expected: str, got: object = None) -> None:
        super().__init__(f"profile {path}: {must(key, expected, got)}")


class ClusterUnavailable(K8sSecError):
    """The cluster cannot be reached or used with the credentials given."""
