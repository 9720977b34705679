"""A regression since a baseline, on the real cluster: a run is stored, the role then gains an
escalation verb (what a careless upgrade of a platform's roles does), and the next run with
--k8s-sec-baseline fails, naming the behaviour, the case and the can-i cell that flipped."""

from __future__ import annotations

import json

from controls import profile_with


def test_a_flipped_can_i_cell_since_the_baseline_fails_the_run(suite, pytester):
    args = ("--k8s-sec-behaviours=RBAC-1,RBAC-2", "-k", "subjectaccessreview or group_members")
    before = suite(*args, "--k8s-sec-report=before")
    assert before.ret == 0, before.stdout.str()[-3000:]
    baseline = pytester.path / "before" / "k8s-sec-report.json"

    same = suite(*args, f"--k8s-sec-baseline={baseline}", "--k8s-sec-report=same")
    assert same.ret == 0, same.stdout.str()[-3000:]
    same.stdout.fnmatch_lines(["k8s-sec: since the baseline (*, certified): no change"])

    token = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    profile = profile_with(lambda d: d["developer_role"]["rules"].append(token))
    after = suite(*args, f"--k8s-sec-baseline={baseline}", "--k8s-sec-report=after", profile=profile)
    assert after.ret == 1
    after.stdout.fnmatch_lines(["k8s-sec: since the baseline (*, certified): 1 regressed*",
                                "k8s-sec:   REGRESSED RBAC-2 test_user_can_i_matches_profile[[]subjectaccessreview[]]: "
                                "pass -> fail*"])
    diff = json.loads((pytester.path / "after" / "k8s-sec-report.json").read_text())["since_baseline"]
    [regressed] = [c for c in diff["changes"] if c["kind"] == "regressed"]
    assert regressed["cells"] == ["matrix: create serviceaccounts/token in tenant: no -> yes"]
    markdown = (pytester.path / "after" / "k8s-sec-report.md").read_text()
    assert "  - matrix: create serviceaccounts/token in tenant: no -> yes" in markdown
