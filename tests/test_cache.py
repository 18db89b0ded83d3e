"""The store's cache: least recently used out first, bounded by entries and by bytes."""

from __future__ import annotations

from service.cache import LRUCache


def sized(max_entries: int, max_bytes: int) -> LRUCache[str, bytes]:
    return LRUCache(max_entries, max_bytes, len)


def test_the_least_recently_used_entry_goes_first_when_the_entries_are_full() -> None:
    cache = sized(2, 1000)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # now b is the least recently used
    cache.put("c", b"3")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (b"1", b"3")


def test_the_byte_bound_evicts_until_the_values_fit() -> None:
    cache = sized(100, 10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    cache.put("c", b"cccc")  # 12 bytes: a goes
    assert cache.get("a") is None
    assert cache.bytes == 8
    assert len(cache) == 2


def test_a_value_larger_than_the_bound_is_not_kept_and_replaces_nothing() -> None:
    cache = sized(100, 10)
    cache.put("a", b"aaaa")
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None
    assert cache.get("a") == b"aaaa"


def test_replacing_and_popping_keep_the_byte_count_exact() -> None:
    cache = sized(100, 100)
    cache.put("a", b"aaaa")
    cache.put("a", b"aa")
    assert cache.bytes == 2
    cache.pop("a")
    cache.pop("missing")
    assert cache.bytes == 0
    assert len(cache) == 0


def test_zero_entries_keeps_nothing() -> None:
    cache = sized(0, 100)
    cache.put("a", b"a")
    assert cache.get("a") is None
