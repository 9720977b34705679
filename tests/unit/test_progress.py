"""Progress of long steps: a running process is reported while it runs, where the caller routes it."""

import sys

import pytest

from pytest_k8ssec import progress


def test_a_long_process_says_where_it_is_until_it_ends(monkeypatch):
    monkeypatch.setattr(progress, "EVERY", 0.1)
    said = []
    with progress.shown_by(said.append):
        done = progress.run([sys.executable, "-c", "import time, sys; time.sleep(0.45); print('out'); sys.exit(3)"], "building x")
    assert done.returncode == 3 and done.stdout == "out\n"
    assert len(said) >= 3 and all(line.startswith("building x: ") and line.endswith("s so far") for line in said)
    progress.say("after the block")  # back to logging, not to the list
    assert len(said) >= 3 and "after the block" not in said


def test_an_interrupted_wait_kills_the_process(monkeypatch):
    monkeypatch.setattr(progress, "EVERY", 0.05)

    def interrupt(message):
        raise KeyboardInterrupt

    with progress.shown_by(interrupt), pytest.raises(KeyboardInterrupt):
        progress.run([sys.executable, "-c", "import time; time.sleep(30)"], "sleeping")
