"""The retry policy: retryable backend errors are retried with bounded, jittered backoff; permanent ones never."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import BackendError, PreconditionFailed
from talaria_storage.storage.retry import RetryPolicy, is_retryable, retrying

KEY = "chunks/" + "ab" * 32


def no_sleep(seconds: float) -> None:
    """Tests never wait: the policy's waits are recorded or ignored, not slept."""


@pytest.fixture
def memory() -> MemoryBackend:
    backend = MemoryBackend()
    backend.put(KEY, b"payload")
    return backend


def test_a_flaky_backend_call_succeeds_after_retries(memory: MemoryBackend) -> None:
    flaky = FaultInjectingBackend(memory, transient_rate=0.3, seed=2)
    policy = RetryPolicy(attempts=20, sleep=no_sleep)
    assert [policy.call(flaky.get, KEY) for _ in range(200)] == [b"payload"] * 200
    assert policy.retries == flaky.injected["transient"] > 0


def test_permanent_errors_are_raised_at_once(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(FaultInjectingBackend(memory, permanent_rate=1.0))
    policy = RetryPolicy(attempts=5, sleep=no_sleep)
    with pytest.raises(BackendError, match="check the credentials") as caught:
        policy.call(counting.get, KEY)
    assert not caught.value.retryable
    assert counting.total == 1 and policy.retries == 0


def test_a_lost_conditional_write_is_not_retried(memory: MemoryBackend) -> None:
    calls = []

    def losing_write() -> None:
        calls.append(1)
        raise PreconditionFailed("refs/db/HEAD")

    with pytest.raises(PreconditionFailed):
        RetryPolicy(sleep=no_sleep).call(losing_write)
    assert len(calls) == 1


def test_other_exceptions_are_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not a flaky link")

    with pytest.raises(ValueError):
        RetryPolicy(sleep=no_sleep).call(broken)
    assert len(calls) == 1


def test_giving_up_raises_a_retryable_error_saying_how_many_attempts(memory: MemoryBackend) -> None:
    dead = FaultInjectingBackend(memory, cut_after=0)
    with pytest.raises(BackendError, match="gave up after 3 attempts") as caught:
        RetryPolicy(attempts=3, sleep=no_sleep).call(dead.get, KEY)
    assert caught.value.retryable and caught.value.key == KEY
    assert dead.calls == 3


def test_a_zero_deadline_allows_a_single_attempt(memory: MemoryBackend) -> None:
    dead = FaultInjectingBackend(memory, cut_after=0)
    with pytest.raises(BackendError):
        RetryPolicy(attempts=10, deadline=0, sleep=no_sleep).call(dead.get, KEY)
    assert dead.calls == 1


def test_waits_grow_exponentially_with_jitter_up_to_the_bound(memory: MemoryBackend) -> None:
    waits: list[float] = []
    dead = FaultInjectingBackend(memory, cut_after=0)
    with pytest.raises(BackendError):
        RetryPolicy(attempts=9, initial_wait=0.1, max_wait=2.0, sleep=waits.append).call(dead.get, KEY)
    assert len(waits) == 8
    for n, wait in enumerate(waits):
        assert 0.0 <= wait <= min(2.0, 0.1 * 2**n)
    assert len(set(waits)) > 1  # jittered, not a fixed schedule


def test_on_retry_hears_each_error_and_attempt_number(memory: MemoryBackend) -> None:
    heard: list[tuple[bool, int]] = []
    faulty = FaultInjectingBackend(memory, cut_after=0)
    policy = RetryPolicy(attempts=3, sleep=no_sleep, on_retry=lambda e, n: heard.append((e.retryable, n)))
    with pytest.raises(BackendError):
        policy.call(faulty.get, KEY)
    assert heard == [(True, 1), (True, 2)]


def test_the_decorator_form_retries_the_wrapped_function(memory: MemoryBackend) -> None:
    flaky = FaultInjectingBackend(memory, transient_rate=0.5, seed=9)
    policy = RetryPolicy(attempts=30, sleep=no_sleep)

    @policy.wrap
    def read() -> bytes:
        return flaky.get(KEY)

    assert all(read() == b"payload" for _ in range(50))
    assert policy.retries > 0


def test_retrying_passes_the_arguments_through(memory: MemoryBackend) -> None:
    flaky = FaultInjectingBackend(memory, transient_rate=0.5, seed=1)
    policy = RetryPolicy(attempts=30, sleep=no_sleep)
    assert retrying(flaky.get_range, KEY, 0, 3, policy=policy) == b"pay"


def test_retries_from_many_threads_are_all_counted(memory: MemoryBackend) -> None:
    flaky = FaultInjectingBackend(memory, transient_rate=0.2, seed=4)
    policy = RetryPolicy(attempts=50, sleep=no_sleep)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: [policy.call(flaky.get, KEY) for _ in range(50)], range(8)))
    assert policy.retries == flaky.injected["transient"]


def test_reset_sets_the_retry_count_to_zero(memory: MemoryBackend) -> None:
    policy = RetryPolicy(attempts=30, sleep=no_sleep)
    policy.call(FaultInjectingBackend(memory, transient_rate=0.9, seed=3).get, KEY)
    policy.reset()
    assert policy.retries == 0


def test_only_retryable_backend_errors_are_retryable() -> None:
    assert is_retryable(BackendError("503", retryable=True))
    assert not is_retryable(BackendError("403"))
    assert not is_retryable(PreconditionFailed("refs/db/HEAD"))
    assert not is_retryable(TimeoutError())


@pytest.mark.parametrize("settings", [{"attempts": 0}, {"initial_wait": -1.0}, {"deadline": -5.0}])
def test_a_policy_with_impossible_bounds_is_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**settings)  # type: ignore[arg-type]
