"""How a missing right is named: the line a skipped case and a refused start-up print."""

from pytest_k8ssec.rights import (EXEC, RUN_NAMESPACES, SAMPLE_RUN_NAMESPACE, SUBJECT_ACCESS_REVIEWS, Right, needs_line)


def test_rights_are_named_with_group_and_scope():
    assert str(SUBJECT_ACCESS_REVIEWS) == "create subjectaccessreviews.authorization.k8s.io (cluster-wide)"
    assert str(EXEC) == "create pods/exec (in the run's namespaces)"
    assert str(Right("list", "daemonsets", "apps", "kube-system")) == "list daemonsets.apps (in namespace kube-system)"
    assert (str(Right("approve", "signers", "certificates.k8s.io", name="kubernetes.io/kube-apiserver-client"))
            == "approve signers.certificates.k8s.io kubernetes.io/kube-apiserver-client (cluster-wide)")


def test_rights_in_the_run_are_asked_in_a_namespace_named_like_the_run():
    attributes = Right("create", "pods/exec", namespace=RUN_NAMESPACES).attributes()
    assert (attributes.resource, attributes.subresource, attributes.namespace) == ("pods", "exec", SAMPLE_RUN_NAMESPACE)
    assert SAMPLE_RUN_NAMESPACE.startswith("k8ssec-")


def test_one_line_names_each_missing_right_and_what_to_do():
    assert needs_line([SUBJECT_ACCESS_REVIEWS], "/ci/kubeconfig") == (
        "needs the right to create subjectaccessreviews.authorization.k8s.io (cluster-wide): "
        "grant it to the identity in /ci/kubeconfig, or use an admin kubeconfig")
    line = needs_line([SUBJECT_ACCESS_REVIEWS, EXEC], "/ci/kubeconfig")
    assert line.startswith("needs the rights to create subjectaccessreviews") and " and create pods/exec " in line
    assert "grant them to the identity in /ci/kubeconfig" in line and "\n" not in line
