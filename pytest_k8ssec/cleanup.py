"""Removing what killed runs left behind, at the start of every run and in --k8s-sec-cleanup mode."""

from __future__ import annotations

from kubernetes import client

from .run import delete_run, live_runs, stale_runs


def remove_leftovers(api: client.ApiClient, own_id: str = "") -> list[str]:
    """Delete the objects of every run whose heartbeat stopped; one line per run, for the user."""
    notes = []
    for run_id in stale_runs(api, own_id):
        left = delete_run(api, run_id)
        notes.append(f"removed the leftovers of killed run {run_id}" + (f" (still there: {', '.join(left)})" if left else ""))
    return notes


def cleanup_only(api: client.ApiClient) -> list[str]:
    """--k8s-sec-cleanup: remove leftovers, and say which live runs were left alone."""
    notes = remove_leftovers(api)
    alive = live_runs(api)
    if alive:
        notes.append(f"left alone: run(s) {', '.join(alive)} still running (heartbeat fresh)")
    return notes or ["nothing to clean: no leftovers of earlier runs on this cluster"]
