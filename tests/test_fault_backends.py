"""The wrapper backends: fault injection for drills, request counting for request budgets."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage import open_store
from talaria_storage.config.settings import config_for_location
from talaria_storage.core.errors import BackendError, ConfigError
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.registry import open_backend, parse_location
from talaria_storage.storage.store import Store
from talaria_storage.testing import BackendConformance

KEY = "chunks/" + "ab" * 32


def outcomes(backend: Backend, calls: int) -> list[str]:
    """Call ``get`` ``calls`` times; what each call did: ok, transient or permanent."""
    seen = []
    for _ in range(calls):
        try:
            backend.get(KEY)
            seen.append("ok")
        except BackendError as exc:
            seen.append("transient" if exc.retryable else "permanent")
    return seen


@pytest.fixture
def memory() -> MemoryBackend:
    backend = MemoryBackend()
    backend.put(KEY, b"payload")
    return backend


# -- both wrappers keep the Backend contract ------------------------------------------------------


class TestFaultInjectingBackendWithoutFaults(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        yield FaultInjectingBackend(MemoryBackend(), seed=1)


class TestRequestCountingBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        yield RequestCountingBackend(MemoryBackend())


@pytest.mark.parametrize("wrapper", [FaultInjectingBackend, RequestCountingBackend])
def test_wrappers_forward_the_capabilities_of_the_inner_backend(tmp_path: Path, wrapper: type) -> None:
    inner = FilesystemBackend(tmp_path / "store")
    wrapped = wrapper(inner)
    assert (wrapped.location, wrapped.is_local, wrapped.supports_native_ranges) == (
        inner.location,
        True,
        True,
    )


class _ClosingMemory(MemoryBackend):
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("wrapper", [FaultInjectingBackend, RequestCountingBackend])
def test_closing_a_wrapper_closes_the_inner_backend(wrapper: type) -> None:
    inner = _ClosingMemory()
    wrapper(inner).close()
    assert inner.closed


# -- transient and permanent faults ---------------------------------------------------------------


def test_transient_faults_happen_at_about_the_requested_rate(memory: MemoryBackend) -> None:
    seen = outcomes(FaultInjectingBackend(memory, transient_rate=0.1, seed=7), 2000)
    assert 140 <= seen.count("transient") <= 260
    assert seen.count("permanent") == 0


def test_permanent_faults_happen_at_about_the_requested_rate(memory: MemoryBackend) -> None:
    seen = outcomes(FaultInjectingBackend(memory, permanent_rate=0.05, seed=3), 2000)
    assert 60 <= seen.count("permanent") <= 140


def test_the_same_seed_injects_the_same_faults(memory: MemoryBackend) -> None:
    first = outcomes(FaultInjectingBackend(memory, transient_rate=0.2, permanent_rate=0.1, seed=11), 300)
    second = outcomes(FaultInjectingBackend(memory, transient_rate=0.2, permanent_rate=0.1, seed=11), 300)
    assert first == second and "transient" in first and "permanent" in first


def test_a_transient_fault_is_a_retryable_error_naming_the_call(memory: MemoryBackend) -> None:
    with pytest.raises(BackendError, match=f"get '{KEY}'") as caught:
        FaultInjectingBackend(memory, transient_rate=1.0).get(KEY)
    assert caught.value.retryable and caught.value.key == KEY


def test_a_permanent_fault_is_not_retryable_and_names_the_fix(memory: MemoryBackend) -> None:
    with pytest.raises(BackendError, match="check the credentials") as caught:
        FaultInjectingBackend(memory, permanent_rate=1.0).get(KEY)
    assert not caught.value.retryable


def test_a_failed_write_changes_nothing(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, transient_rate=1.0)
    with pytest.raises(BackendError):
        faulty.put("state/op", b"x")
    assert not memory.exists("state/op")


def test_faults_can_be_limited_to_some_operations(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, transient_rate=1.0, operations={"put"})
    assert faulty.get(KEY) == b"payload"
    with pytest.raises(BackendError):
        faulty.put("state/op", b"x")


def test_injected_faults_are_counted(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, transient_rate=0.3, permanent_rate=0.1, seed=5)
    seen = outcomes(faulty, 500)
    assert faulty.injected == {
        "transient": seen.count("transient"),
        "permanent": seen.count("permanent"),
        "lost_response": 0,
        "cut": 0,
    }
    assert faulty.calls == 500


def test_latency_is_added_before_every_call(memory: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("talaria_storage.backends.faults.time.sleep", slept.append)
    faulty = FaultInjectingBackend(memory, latency_seconds=0.25)
    faulty.get(KEY)
    faulty.exists(KEY)
    assert slept == [0.25, 0.25]


@pytest.mark.parametrize(
    "settings",
    [
        {"transient_rate": 1.5},
        {"permanent_rate": -0.1},
        {"transient_rate": 0.6, "permanent_rate": 0.6},
        {"latency_seconds": -1.0},
        {"cut_after": -1},
        {"operations": {"fetch"}},
    ],
)
def test_out_of_range_settings_are_refused(memory: MemoryBackend, settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultInjectingBackend(memory, **settings)  # type: ignore[arg-type]


# -- lost responses ------------------------------------------------------------------------------


def test_a_lost_response_write_lands_although_the_call_fails(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, lost_response_rate=1.0)
    with pytest.raises(BackendError, match="the write landed") as caught:
        faulty.put("state/op", b"landed")
    assert caught.value.retryable
    assert memory.get("state/op") == b"landed"


def test_a_retried_create_after_a_lost_response_finds_its_own_object(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, lost_response_rate=1.0, operations={"put_if_absent"})
    with pytest.raises(BackendError):
        faulty.put_if_absent("refs/db/HEAD", b"mine")
    assert memory.put_if_absent("refs/db/HEAD", b"mine") is False
    assert memory.get("refs/db/HEAD") == b"mine"


def test_reads_never_lose_responses(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, lost_response_rate=1.0)
    assert faulty.get(KEY) == b"payload"
    assert faulty.injected["lost_response"] == 0


# -- a cut link ----------------------------------------------------------------------------------


def test_after_cut_after_calls_every_call_fails(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, cut_after=3)
    assert outcomes(faulty, 6) == ["ok"] * 3 + ["transient"] * 3
    assert faulty.is_cut and faulty.injected["cut"] == 3


def test_restore_brings_a_cut_link_back(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, cut_after=1)
    outcomes(faulty, 2)
    faulty.restore()
    assert outcomes(faulty, 5) == ["ok"] * 5


def test_restore_can_arm_a_new_cut(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory)
    faulty.cut()
    assert outcomes(faulty, 1) == ["transient"]
    faulty.restore(cut_after=2)
    assert outcomes(faulty, 3) == ["ok", "ok", "transient"]


def test_the_cut_comes_after_exactly_that_many_calls_from_many_threads(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, cut_after=150)
    with ThreadPoolExecutor(8) as pool:
        seen = [s for chunk in pool.map(lambda _: outcomes(faulty, 25), range(8)) for s in chunk]
    assert seen.count("ok") == 150 and seen.count("transient") == 50


# -- opening a drill from a location ----------------------------------------------------------------


def test_a_faults_location_opens_the_backend_wrapped() -> None:
    backend = open_backend("faults+memory://drill?transient=0.25&permanent=0.01&latency=0&cut_after=9&seed=4")
    assert isinstance(backend, FaultInjectingBackend)
    assert isinstance(backend.inner, MemoryBackend) and backend.location == "memory://drill"
    assert (backend.transient_rate, backend.permanent_rate) == (0.25, 0.01)


def test_a_faults_location_may_limit_the_operations() -> None:
    backend = open_backend("faults+memory://drill?operations=put,get&transient=1")
    assert isinstance(backend, FaultInjectingBackend) and backend.operations == {"put", "get"}


def test_a_faults_location_keeps_the_inner_location_parts(tmp_path: Path) -> None:
    location = parse_location(f"faults+file://{tmp_path}/store?seed=1")
    assert (location.scheme, location.path) == ("file", f"{tmp_path}/store")


@pytest.mark.parametrize(
    "location, message",
    [
        ("faults+memory://x?transiant=0.1", "unknown fault option 'transiant'"),
        ("faults+memory://x?transient=lots", "transient='lots'.*is not a fraction"),
        ("faults+memory://x?transient=2", "between 0 and 1"),
        ("faults+memory://x?cut_after=1.5", "cut_after='1.5'.*is not a number of calls"),
        ("faults+memory://x?seed=1&seed=2", "given twice"),
        ("faults+memory://x?transient", "malformed"),
        ("faults+faults+memory://x", "repeats"),
        ("faults+ftp://host/x", "unknown store scheme"),
        ("faults+./store?seed=1", "absolute path"),
    ],
)
def test_a_bad_faults_location_is_a_config_error_naming_it(location: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_location(location)


def test_open_store_opens_a_store_behind_faults(tmp_path: Path) -> None:
    with open_store(f"faults+file://{tmp_path}/store?seed=1") as store:
        assert isinstance(store.backend, FaultInjectingBackend)
        h = store.store_chunk(b"drill")
    with open_store(str(tmp_path / "store"), create=False) as plain:
        assert plain.get_chunk(h) == b"drill"


def test_the_configured_store_refuses_a_faults_location_instead_of_dropping_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="open_store"):
        config_for_location(f"faults+file://{tmp_path}/store?transient=0.1")


# -- request counting ----------------------------------------------------------------------------


def test_calls_are_counted_per_method(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    counting.get(KEY)
    counting.get(KEY)
    counting.exists(KEY)
    counting.read_versioned("refs/db/HEAD")
    assert counting.counts == {"get": 2, "exists": 1, "read_versioned": 1}
    assert counting.total == 4 and counting.listings == 0


def test_listings_are_counted_apart(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    list(counting.list("chunks/"))
    counting.get(KEY)
    assert counting.listings == 1 and counting.total == 2


def test_a_batch_call_counts_once_and_reports_its_keys(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    counting.exists_many([KEY, "chunks/" + "cd" * 32, "chunks/" + "ef" * 32])
    assert counting.counts == {"exists_many": 1} and counting.batched_keys == 3


def test_writes_are_counted_per_key(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    counting.put_if_absent("chunks/" + "01" * 32, b"a")
    counting.put_if_absent("chunks/" + "01" * 32, b"a")
    counting.put("state/op", b"s")
    assert counting.writes_per_key == {"chunks/" + "01" * 32: 2, "state/op": 1}


def test_reset_sets_every_counter_to_zero(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    counting.put("state/op", b"s")
    counting.get_many([KEY])
    list(counting.list(""))
    counting.reset()
    assert (counting.counts, counting.total, counting.listings, counting.batched_keys, counting.writes_per_key) == (
        {},
        0,
        0,
        0,
        {},
    )


def test_counting_is_exact_under_concurrency(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: [counting.get(KEY) for _ in range(100)], range(8)))
    assert counting.counts == {"get": 800}


def test_reading_a_chunk_through_a_store_costs_one_request(memory: MemoryBackend) -> None:
    counting = RequestCountingBackend(memory)
    store = Store(counting)
    h = store.store_chunk(b"hello")
    counting.reset()
    store.get_chunk(h)
    assert counting.counts == {"get": 1}
