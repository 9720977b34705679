"""Progress of the long waits (a first build, a cluster start, kind create and Calico) as they happen.

Outside pytest the messages go to logging (the command line shows INFO). Inside a run the
plugin routes them to pytest's terminal reporter, so they show at once and `-q`/`-v` output
stays tidy. A long step says where it is at least every EVERY seconds.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
import time
from typing import Callable, Iterator, Sequence

log = logging.getLogger(__name__)
EVERY = 15.0
_sinks: list[Callable[[str], None]] = [log.info]


def say(message: str) -> None:
    _sinks[-1](message)


@contextlib.contextmanager
def shown_by(write: Callable[[str], None]) -> Iterator[None]:
    """Route progress messages to `write` inside the block."""
    _sinks.append(write)
    try:
        yield
    finally:
        _sinks.pop()


def run(argv: Sequence[str], label: str, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with captured output, saying `label` and the time so far every EVERY seconds.

    The process is killed if the wait is interrupted (Ctrl-C, SIGTERM).
    """
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, text=True, **kwargs)
        try:
            while True:
                try:
                    proc.wait(timeout=EVERY)
                    break
                except subprocess.TimeoutExpired:
                    say(f"{label}: {time.monotonic() - start:.0f}s so far")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
