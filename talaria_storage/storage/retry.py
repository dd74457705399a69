"""One retry policy for backend calls: retry retryable :class:`BackendError` s, never permanent ones.

Backends mark every error they raise as retryable (throttling, timeouts,
5xx, connection resets) or permanent (bad credentials, missing bucket,
access denied, a lost conditional write) at their edge
(:attr:`BackendError.retryable`), so this module decides for all of them,
as restic's ``IsPermanentError`` does. It sits *above* each SDK's own retry
machinery (botocore, google-api-core and azure-core already retry single
requests): it covers what those do not, such as a whole multi-request step,
a filesystem on a flaky network mount, or a :class:`FaultInjectingBackend`.

The policy (:class:`RetryPolicy`) is exponential backoff with full jitter
(each wait is uniform in ``[0, min(max_wait, initial_wait * 2**n)]``, the
scheme the AWS architecture blog recommends so that many clients retrying at
once do not stampede), bounded both by a number of attempts and by a total
time. When it gives up, the last error is raised again with "gave up after N
attempts" added, still marked retryable so a caller knows a later re-run may
succeed. The backoff, the stop rules and the exception predicate are
tenacity's; this module only fixes the policy and counts retries.

Use::

    policy = RetryPolicy(attempts=6)
    data = policy.call(backend.get, key)            # or: retrying(backend.get, key)
    print(policy.retries)                           # "retried N" for a sync report

    @policy.wrap
    def copy_one(key: str) -> None: ...
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import tenacity

from talaria_storage.core.errors import BackendError

P = ParamSpec("P")
T = TypeVar("T")

#: Called before each wait: the error that will be retried and the number of the attempt that failed.
RetryCallback = Callable[[BackendError, int], None]


def is_retryable(error: BaseException) -> bool:
    """True for a :class:`BackendError` that a later attempt may cure."""
    return isinstance(error, BackendError) and error.retryable


class RetryPolicy:
    """Exponential backoff with jitter for retryable backend errors, with a thread-safe retry counter.

    ``attempts`` bounds the calls (the first one included); ``deadline``
    bounds the seconds spent from the first call, so a dead link gives up in
    bounded time whatever ``attempts`` says. ``sleep`` is the function that
    waits (tests pass a no-op so they take no wall time). One policy may be
    shared by many threads; :attr:`retries` counts the retries of all of them.
    """

    def __init__(
        self,
        *,
        attempts: int = 6,
        initial_wait: float = 0.1,
        max_wait: float = 5.0,
        deadline: float = 120.0,
        on_retry: RetryCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        if initial_wait < 0 or max_wait < 0 or deadline < 0:
            raise ValueError("initial_wait, max_wait and deadline must not be negative")
        self.attempts = attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.deadline = deadline
        self.on_retry = on_retry
        self._sleep = sleep
        self._lock = threading.Lock()
        self._retries = 0

    @property
    def retries(self) -> int:
        """Retries made through this policy so far (not counting first attempts)."""
        with self._lock:
            return self._retries

    def reset(self) -> None:
        """Set the retry counter back to zero."""
        with self._lock:
            self._retries = 0

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying retryable backend errors under this policy."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.deadline),
            wait=tenacity.wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait),
            before_sleep=self._count,
            sleep=self._sleep,
            reraise=True,
        )
        started = time.monotonic()
        try:
            return retrying(fn, *args, **kwargs)
        except BackendError as exc:
            made = retrying.statistics.get("attempt_number", 1)
            if not exc.retryable or made <= 1:
                raise  # permanent, or a policy of one attempt: the error as the backend said it
            raise BackendError(
                f"{exc} (gave up after {made} attempts in {time.monotonic() - started:.1f} s)",
                retryable=True,
                key=exc.key,
            ) from exc

    def wrap(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorator form of :meth:`call`."""

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def _count(self, state: tenacity.RetryCallState) -> None:
        with self._lock:
            self._retries += 1
        if self.on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if isinstance(error, BackendError):
                self.on_retry(error, state.attempt_number)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(attempts={self.attempts}, initial_wait={self.initial_wait}, "
            f"max_wait={self.max_wait}, deadline={self.deadline})"
        )


def retrying(
    fn: Callable[..., T],
    *args: object,
    attempts: int = 6,
    on_retry: RetryCallback | None = None,
    policy: RetryPolicy | None = None,
    **kwargs: object,
) -> T:
    """Call ``fn(*args, **kwargs)`` once under ``policy`` (or a fresh default one with ``attempts``).

    A convenience for one-off calls; code that wants a retry count across
    many calls keeps a :class:`RetryPolicy` and uses :meth:`RetryPolicy.call`.
    The names ``attempts``, ``on_retry`` and ``policy`` are taken by this
    function and never passed to ``fn``.
    """
    chosen = policy if policy is not None else RetryPolicy(attempts=attempts, on_retry=on_retry)
    return chosen.call(fn, *args, **kwargs)
