"""The fleet's command line: one member per context or kubeconfig, with names the reports can use."""

import pytest

from pytest_k8ssec.errors import K8sSecError
from pytest_k8ssec.fleet import main, members


def test_members_from_contexts_in_one_file_or_one_file_each():
    assert [(m.name, m.args) for m in members(["prod/eu", "prod/us"], [], "k.yaml")] == [
        ("prod-eu", ("--context", "prod/eu", "--kubeconfig", "k.yaml")),
        ("prod-us", ("--context", "prod/us", "--kubeconfig", "k.yaml"))]
    assert [m.name for m in members([], ["/a/eu.yaml", "/b/us.yaml"], None)] == ["eu", "us"]
    with pytest.raises(K8sSecError, match="share a name"):
        members([], ["/a/eu.yaml", "/b/eu.yaml"], None)


@pytest.mark.parametrize("argv, line", [
    ([], "no cluster given: pass --context NAME or --kubeconfig FILE"),
    (["--context", "a", "--jobs", "0"], "--jobs must be 1 or more"),
    (["--context", "a", "--kubeconfig", "x", "--kubeconfig", "y"], "give at most one --kubeconfig"),
])
def test_bad_fleet_arguments_are_one_line_and_exit_3(argv, line, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "f")]) == 3
    err = capsys.readouterr().err
    assert line in err and err.count("\n") == 1 and not (tmp_path / "f").exists()
