"""A fleet on the local cluster: two contexts reaching it and one reaching nothing, at once; one merged report."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import yaml

from pytest_k8ssec.report import main as report_main
from test_isolation import profile_with_local_images

SUBSET = "--k8s-sec-behaviours=NETPOL-1,NETPOL-2"


def test_a_fleet_reports_every_cluster_in_one_page_and_fails_for_the_one_not_certified(local_cluster, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("K8SSEC_CACHE", str(local_cluster.cache))
    config = yaml.safe_load(local_cluster.layout.admin_kubeconfig.read_text())
    cluster, user = config["clusters"][0], config["users"][0]
    config["clusters"].append({"name": "nowhere", "cluster": {**cluster["cluster"], "server": "https://127.0.0.1:1"}})
    config["contexts"] = [{"name": name, "context": {"cluster": target, "user": user["name"]}}
                          for name, target in (("alpha", cluster["name"]), ("beta", cluster["name"]), ("nowhere", "nowhere"))]
    config["current-context"] = "alpha"
    kubeconfig = tmp_path / "fleet.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    out = tmp_path / "fleet"

    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest_k8ssec.fleet", "--kubeconfig", str(kubeconfig), "--context",
                           "alpha", "--context", "beta", "--context", "nowhere", "--jobs", "3", "--out", str(out),
                           "--", SUBSET, profile_with_local_images(local_cluster, tmp_path)],
                          capture_output=True, text=True)
    print(f"fleet of three: {time.monotonic() - t0:.1f} s; {done.stdout.splitlines()[-2]}")
    assert done.returncode == 1, done.stdout + done.stderr
    fleet = json.loads((out / "k8s-sec-fleet.json").read_text())
    rows = {r["cluster"]: r for r in fleet["clusters"]}
    assert fleet["verdict"] == "not certified" and [r["cluster"] for r in fleet["clusters"]] == ["nowhere", "alpha", "beta"]
    assert rows["alpha"]["verdict"] == rows["beta"]["verdict"] == "certified", rows
    assert rows["alpha"]["provider"] == "existing" and rows["alpha"]["version"].startswith("v1.")
    assert rows["nowhere"]["verdict"] == "error" and "127.0.0.1:1" in rows["nowhere"]["short"][0], rows["nowhere"]
    page = (out / "k8s-sec-fleet.html").read_text()
    assert page.count('href="alpha/k8s-sec-report.html"') == 1 and "nowhere" in page
    assert (out / "alpha" / "k8s-sec-report.html").exists() and (out / "beta" / "k8s-sec-report.sarif").exists()

    # one cluster alone, for the benchmark line (printed, never asserted)
    t1 = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest_k8ssec.fleet", "--kubeconfig", str(kubeconfig), "--context", "alpha",
                    "--out", str(tmp_path / "single"), "--", SUBSET, profile_with_local_images(local_cluster, tmp_path)],
                   capture_output=True, text=True, check=True)
    print(f"one cluster alone: {time.monotonic() - t1:.1f} s")

    # the same reports merged later, as separate CI jobs would
    assert report_main(["merge", *(str(out / n) for n in ("alpha", "beta", "nowhere")), "--out", str(tmp_path / "m")]) == 1
    assert json.loads((tmp_path / "m" / "k8s-sec-fleet.json").read_text()) == fleet
