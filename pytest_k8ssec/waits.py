"""Bounded waiting with tenacity: every wait names what it waited for when it gives up."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import tenacity

from . import progress

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A bounded wait ran out; the message says what was awaited and the last observation."""


def wait_for(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.5,
    max_interval: float = 2.0,
    ready: Callable[[T], bool] = bool,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `probe` until `ready(result)` holds, at most `timeout` seconds.

    Exceptions listed in `retry_on` count as "not yet"; any other exception propagates.
    Returns the first ready result; raises WaitTimeout with the last result or error. A long
    wait says what it waits for, and what it last saw, every progress.EVERY seconds.
    """
    last: dict[str, object] = {}
    started = said = time.monotonic()

    def report(_: tenacity.RetryCallState) -> None:
        nonlocal said
        if time.monotonic() - said >= progress.EVERY:
            said = time.monotonic()
            progress.say(f"waiting for {what}: {said - started:.0f}s so far; last seen: {_short(last.get('seen'), 120)}")

    def attempt() -> T:
        try:
            value = probe()
        except retry_on as exc:  # type: ignore[misc]
            last["seen"] = f"{type(exc).__name__}: {exc}"
            raise
        last["seen"] = value
        return value

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_exponential(multiplier=interval, max=max_interval),
        retry=(tenacity.retry_if_exception_type(retry_on) if retry_on else tenacity.retry_never)
        | tenacity.retry_if_result(lambda v: not ready(v)),
        before_sleep=report,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError:
        raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {_short(last.get('seen'))}") from None
    except retry_on as exc:  # type: ignore[misc]
        raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last error: {exc}") from exc


def wait_counting(what: str, probe: Callable[[], T], *, timeout: float, ready: Callable[[T], bool], interval: float = 0.3) -> tuple[T, int]:
    """Like wait_for, and also return how many attempts it took (for the report)."""
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return probe()

    value = wait_for(what, counted, timeout=timeout, interval=interval, max_interval=1.0, ready=ready)
    return value, attempts


def _short(value: object, limit: int = 400) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."
