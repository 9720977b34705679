"""Selecting behaviours by ID (--k8s-sec-behaviours)."""

import pytest

from pytest_k8ssec.behaviours import parse_selection
from pytest_k8ssec.errors import K8sSecError


def test_selection_accepts_known_ids_and_names_unknown_ones():
    assert parse_selection("rbac-2, NETPOL-1") == {"RBAC-2", "NETPOL-1"}
    assert parse_selection(None) is None
    with pytest.raises(K8sSecError, match="unknown behaviour ID RBAC-9 in --k8s-sec-behaviours"):
        parse_selection("RBAC-2,RBAC-9")
