"""The fixtures a user's own tests may use: documented by `pytest --fixtures`, skipping (not erroring) without --k8s-sec."""

import pytest

PUBLIC = ["k8s_session", "k8s_profile", "k8s_cluster", "k8s_admin", "k8s_rights", "k8s_run", "k8s_keys", "k8s_user",
          "k8s_evidence", "k8s_namespace", "k8s_can_i", "k8s_admit", "k8s_reach", "k8s_make_user"]


@pytest.mark.parametrize("loaded", ["installed", "asked for"])
def test_pytest_fixtures_lists_every_public_fixture_with_its_docstring(pytester, monkeypatch, loaded):
    """Installed, pytest loads the plugin by its entry point; without autoloading, `-p pytest_k8ssec.plugin` does."""
    args = ["--fixtures", "-p", "no:cacheprovider"]
    if loaded == "asked for":
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        args += ["-p", "pytest_k8ssec.plugin"]
    out = pytester.runpytest_subprocess(*args).stdout.str()
    for name in PUBLIC:
        line = next((line for line in out.splitlines() if line.startswith(f"{name} ")), None)
        assert line, f"{name} is not listed"
        doc = out.splitlines()[out.splitlines().index(line) + 1]
        assert doc.strip() and "no docstring available" not in doc, f"{name} has no docstring"


def test_without_k8s_sec_a_test_using_them_is_skipped_saying_why_and_others_run_untouched(pytester):
    pytester.makepyfile("""
        def test_mine(k8s_admin):
            pass

        def test_plain():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*the k8s-sec fixtures need a k8s-sec run: pass --k8s-sec*"])
