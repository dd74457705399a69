"""The Backend conformance suite: the contract of :class:`talaria_storage.storage.backend.Backend` as tests."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from talaria_storage.core.errors import InvalidKey, ObjectNotFound, PreconditionFailed
from talaria_storage.storage.backend import Backend, touched_since

BAD_KEYS = [
    "../escape",
    "/absolute/key",
    "chunks/../../etc/passwd",
    "a//b",
    "trailing/",
    ".tmp/hidden",
    "refs/db/..",
    "back\\slash",
    "space in/key",
    "",
]

CHUNK_KEY = "chunks/" + "ab" * 32


def _race(n: int, action) -> list[object]:
    """Run ``action(i)`` on ``n`` threads released at the same instant."""
    barrier = threading.Barrier(n)

    def go(i: int) -> object:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


class BackendConformance:
    """Every Backend must pass these. Provide a ``backend`` fixture yielding a fresh, empty one."""

    #: how many objects the listing test writes; above 1000 crosses S3's and GCS's first page.
    listing_count = 1050
    #: size of the large-object test; above 8 MiB crosses the SDKs' multipart thresholds.
    large_object_size = 9 * 1024 * 1024 + 17

    # -- put / get ------------------------------------------------------------------------------

    def test_get_returns_the_bytes_put(self, backend: Backend) -> None:
        backend.put("store.json", b'{"a": 1}')
        assert backend.get("store.json") == b'{"a": 1}'

    def test_empty_object_round_trips(self, backend: Backend) -> None:
        backend.put("state/empty", b"")
        assert backend.get("state/empty") == b""
        assert backend.exists("state/empty")

    def test_binary_content_round_trips_unchanged(self, backend: Backend) -> None:
        data = bytes(range(256)) * 17 + b"\r\n\x00"
        backend.put(CHUNK_KEY, data)
        assert backend.get(CHUNK_KEY) == data

    def test_large_object_round_trips(self, backend: Backend) -> None:
        data = os.urandom(self.large_object_size)
        backend.put("chunks/" + "cd" * 32, data)
        assert backend.get("chunks/" + "cd" * 32) == data

    def test_put_replaces_an_existing_object(self, backend: Backend) -> None:
        backend.put("state/op", b"one")
        backend.put("state/op", b"two")
        assert backend.get("state/op") == b"two"

    def test_get_of_a_missing_key_raises_object_not_found(self, backend: Backend) -> None:
        with pytest.raises(ObjectNotFound):
            backend.get("chunks/" + "00" * 32)

    def test_object_not_found_is_a_key_error(self, backend: Backend) -> None:
        with pytest.raises(KeyError):
            backend.get("refs/nothing/HEAD")

    # -- exists / delete / stat -----------------------------------------------------------------

    def test_exists_is_false_before_put_and_true_after(self, backend: Backend) -> None:
        assert not backend.exists(CHUNK_KEY)
        backend.put(CHUNK_KEY, b"x")
        assert backend.exists(CHUNK_KEY)

    def test_delete_removes_the_object(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"x")
        backend.delete(CHUNK_KEY)
        assert not backend.exists(CHUNK_KEY)
        with pytest.raises(ObjectNotFound):
            backend.get(CHUNK_KEY)

    def test_delete_of_a_missing_key_is_not_an_error(self, backend: Backend) -> None:
        backend.delete("state/never-written")

    def test_stat_reports_the_stored_size(self, backend: Backend) -> None:
        backend.put("manifests/" + "12" * 32, b"0123456789")
        assert backend.stat("manifests/" + "12" * 32).size == 10

    def test_stat_of_a_missing_key_raises_object_not_found(self, backend: Backend) -> None:
        with pytest.raises(ObjectNotFound):
            backend.stat("state/missing")

    # -- touch (freshening a re-used object for gc's grace period) ------------------------------

    def test_touch_renews_the_modification_time_and_keeps_the_bytes(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"re-used object")
        before = backend.stat(CHUNK_KEY).modified
        time.sleep(1.1)  # the services keep whole seconds (S3 LastModified, Azure Last-Modified)
        backend.touch(CHUNK_KEY)
        after = backend.stat(CHUNK_KEY)
        assert after.modified >= before + 1
        assert (after.size, backend.get(CHUNK_KEY)) == (14, b"re-used object")
        assert [info.modified for info in backend.list("chunks/")] == [after.modified]

    def test_touch_of_a_missing_key_raises_object_not_found_and_creates_nothing(self, backend: Backend) -> None:
        with pytest.raises(ObjectNotFound):
            backend.touch(CHUNK_KEY)
        assert not backend.exists(CHUNK_KEY)

    def test_a_stat_never_reports_an_untouched_object_later_than_its_listing(self, backend: Backend) -> None:
        """gc tells a writer's touch by a stat's time past the listing's (``touched_since``)."""
        backend.put(CHUNK_KEY, b"orphan")
        [listed] = list(backend.list("chunks/"))
        assert not touched_since(listed, backend.stat(CHUNK_KEY))
        assert not touched_since(listed, backend.stat_many([CHUNK_KEY])[CHUNK_KEY])

    # -- conditional delete (gc's sweep) --------------------------------------------------------

    def test_delete_unchanged_deletes_what_nobody_touched(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"orphan")
        backend.put("chunks/other", b"orphan too")
        infos = list(backend.stat_many([CHUNK_KEY, "chunks/other"]).values())
        assert sorted(info.key for info in backend.delete_unchanged(infos)) == sorted([CHUNK_KEY, "chunks/other"])
        assert not backend.exists(CHUNK_KEY) and not backend.exists("chunks/other")

    def test_delete_unchanged_skips_an_object_already_gone(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"orphan")
        info = backend.stat(CHUNK_KEY)
        backend.delete(CHUNK_KEY)
        backend.delete_unchanged([info])  # nothing to delete: no error
        assert not backend.exists(CHUNK_KEY)

    def test_delete_unchanged_spares_an_object_touched_after_its_stat_only_if_deletes_are_conditional(
        self, backend: Backend
    ) -> None:
        backend.put(CHUNK_KEY, b"re-used object")
        info = backend.stat(CHUNK_KEY)
        time.sleep(1.1)  # the services keep whole seconds
        backend.touch(CHUNK_KEY)
        if backend.CONDITIONAL_DELETE:
            assert backend.delete_unchanged([info]) == []
            assert backend.get(CHUNK_KEY) == b"re-used object"
        else:  # the documented window: a touch after the caller's stat does not save it
            assert backend.delete_unchanged([info]) == [info]
            assert not backend.exists(CHUNK_KEY)

    # -- ranges ---------------------------------------------------------------------------------

    def test_get_range_returns_the_requested_slice(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"0123456789")
        assert backend.get_range(CHUNK_KEY, 2, 5) == b"234"

    def test_get_range_is_clipped_at_the_end_of_the_object(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"0123456789")
        assert backend.get_range(CHUNK_KEY, 7, 100) == b"789"

    def test_get_range_of_zero_length_is_empty(self, backend: Backend) -> None:
        backend.put(CHUNK_KEY, b"0123456789")
        assert backend.get_range(CHUNK_KEY, 4, 4) == b""

    def test_get_range_of_a_missing_key_raises_object_not_found(self, backend: Backend) -> None:
        with pytest.raises(ObjectNotFound):
            backend.get_range("chunks/" + "ef" * 32, 0, 4)

    # -- listing --------------------------------------------------------------------------------

    def test_list_returns_only_keys_under_the_prefix(self, backend: Backend) -> None:
        backend.put("refs/db1/HEAD", b"1")
        backend.put("refs/db1/v1", b"22")
        backend.put("refs/db10/HEAD", b"333")
        backend.put(CHUNK_KEY, b"4444")
        listed = {info.key: info.size for info in backend.list("refs/db1/")}
        assert listed == {"refs/db1/HEAD": 1, "refs/db1/v1": 2}

    def test_list_with_an_empty_prefix_returns_every_object(self, backend: Backend) -> None:
        keys = {"store.json", CHUNK_KEY, "manifests/" + "01" * 32, "refs/db/HEAD", "state/op-1"}
        for key in keys:
            backend.put(key, key.encode())
        assert {info.key for info in backend.list("")} == keys

    def test_list_of_content_addressed_keys_gives_the_logical_keys(self, backend: Backend) -> None:
        hexes = {f"{i:02x}" * 32 for i in range(5)}
        for h in hexes:
            backend.put("chunks/" + h, b"c")
        assert {info.key for info in backend.list("chunks/")} == {"chunks/" + h for h in hexes}

    def test_list_reports_a_modification_time(self, backend: Backend) -> None:
        backend.put("state/op", b"x")
        (info,) = list(backend.list("state/"))
        assert info.modified > 0

    def test_list_crosses_page_boundaries(self, backend: Backend) -> None:
        keys = [f"chunks/{i:064x}" for i in range(self.listing_count)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: backend.put(k, b"."), keys))
        assert sorted(info.key for info in backend.list("chunks/")) == keys

    # -- conditional writes ---------------------------------------------------------------------

    def test_put_if_absent_creates_a_missing_key(self, backend: Backend) -> None:
        assert backend.put_if_absent(CHUNK_KEY, b"first") is True
        assert backend.get(CHUNK_KEY) == b"first"

    def test_put_if_absent_leaves_an_existing_key_unchanged(self, backend: Backend) -> None:
        backend.put_if_absent(CHUNK_KEY, b"first")
        assert backend.put_if_absent(CHUNK_KEY, b"second") is False
        assert backend.get(CHUNK_KEY) == b"first"

    def test_read_versioned_of_a_missing_key_is_none(self, backend: Backend) -> None:
        assert backend.read_versioned("refs/db/HEAD") is None

    def test_put_if_version_succeeds_with_the_current_version(self, backend: Backend) -> None:
        backend.put("refs/db/HEAD", b"v1")
        current = backend.read_versioned("refs/db/HEAD")
        assert current is not None and current.data == b"v1"
        backend.put_if_version("refs/db/HEAD", b"v2", current.version)
        assert backend.get("refs/db/HEAD") == b"v2"

    def test_put_if_version_fails_with_a_stale_version(self, backend: Backend) -> None:
        backend.put("refs/db/HEAD", b"v1")
        stale = backend.read_versioned("refs/db/HEAD")
        assert stale is not None
        backend.put("refs/db/HEAD", b"v2")
        with pytest.raises(PreconditionFailed):
            backend.put_if_version("refs/db/HEAD", b"v3", stale.version)
        assert backend.get("refs/db/HEAD") == b"v2"

    def test_put_if_version_none_fails_when_the_key_exists(self, backend: Backend) -> None:
        backend.put("refs/db/HEAD", b"v1")
        with pytest.raises(PreconditionFailed):
            backend.put_if_version("refs/db/HEAD", b"v2", None)

    def test_compare_and_swap_replaces_the_expected_content(self, backend: Backend) -> None:
        assert backend.compare_and_swap("refs/db/HEAD", None, b"v1")
        assert backend.compare_and_swap("refs/db/HEAD", b"v1", b"v2")
        assert backend.get("refs/db/HEAD") == b"v2"

    def test_compare_and_swap_refuses_unexpected_content(self, backend: Backend) -> None:
        backend.put("refs/db/HEAD", b"v1")
        assert not backend.compare_and_swap("refs/db/HEAD", b"v0", b"v2")
        assert not backend.compare_and_swap("refs/db/HEAD", None, b"v2")
        assert backend.get("refs/db/HEAD") == b"v1"

    def test_sixteen_creators_race_and_exactly_one_wins(self, backend: Backend) -> None:
        results = _race(16, lambda i: backend.put_if_absent("refs/race/HEAD", f"w{i}".encode()))
        assert results.count(True) == 1
        assert backend.get("refs/race/HEAD") == f"w{results.index(True)}".encode()

    def test_sixteen_swappers_race_and_exactly_one_wins(self, backend: Backend) -> None:
        backend.put("refs/race/HEAD", b"base")
        results = _race(
            16, lambda i: backend.compare_and_swap("refs/race/HEAD", b"base", f"w{i}".encode())
        )
        assert results.count(True) == 1
        assert backend.get("refs/race/HEAD") == f"w{results.index(True)}".encode()

    # -- batches --------------------------------------------------------------------------------

    def test_get_many_returns_the_present_keys_only(self, backend: Backend) -> None:
        backend.put("state/a", b"A")
        backend.put("state/b", b"B")
        assert backend.get_many(["state/a", "state/b", "state/c"]) == {"state/a": b"A", "state/b": b"B"}

    def test_exists_many_returns_the_present_subset(self, backend: Backend) -> None:
        backend.put("state/a", b"A")
        assert backend.exists_many(["state/a", "state/z"]) == {"state/a"}

    def test_stat_many_reports_the_present_keys_only(self, backend: Backend) -> None:
        backend.put("state/a", b"A")
        backend.put("state/bb", b"BB")
        found = backend.stat_many(["state/a", "state/bb", "state/c"])
        assert {key: info.size for key, info in found.items()} == {"state/a": 1, "state/bb": 2}

    def test_delete_many_removes_every_key(self, backend: Backend) -> None:
        for k in ("state/a", "state/b"):
            backend.put(k, b"x")
        backend.delete_many(["state/a", "state/b", "state/never"])
        assert list(backend.list("state/")) == []

    # -- key validation -------------------------------------------------------------------------

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_put_rejects_a_malformed_key(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidKey):
            backend.put(key, b"x")

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_get_rejects_a_malformed_key(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidKey):
            backend.get(key)

    def test_malformed_keys_write_nothing(self, backend: Backend) -> None:
        for key in BAD_KEYS:
            with pytest.raises(InvalidKey):
                backend.put_if_absent(key, b"x")
        assert list(backend.list("")) == []
