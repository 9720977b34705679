"""can-i matrices: rendering and mismatches."""

from pytest_k8ssec.access import Matrix


def test_matrix_marks_mismatches():
    m = Matrix([("create pods in tenant", True, True), ("get pods/log in tenant", False, True)])
    text = m.render()
    assert m.mismatches == [("get pods/log in tenant", False, True)]
    assert "get pods/log in tenant  no        yes        <-- MISMATCH" in text
