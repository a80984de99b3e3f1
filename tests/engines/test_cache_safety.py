"""Cache safety: provenance on every row, old files migrated, a damaged file caught at open with its path and the
repair command, and `limo cache repair` keeping every row on an undamaged page.

.venv/bin/pytest tests/engines/test_cache_safety.py
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from limo.engines.base import Completion, dropped
from limo.engines.cache import LEGACY_PRODUCER, CacheCorrupt, GenerationCache
from limo.engines.cache_repair import check_cache, repair_cache

PRODUCER = {"engine": "hf", "model": "m", "revision": "r1", "versions": {"limo": "0.1.0"}}


def _fill(path, rows: int) -> dict[str, str]:
    cache = GenerationCache(path)
    texts = {f"key{i:05d}": f"completion {i} " + "x" * (200 + i % 50) for i in range(rows)}
    items = [(k, Completion(t, 3, 7, "stop", producer=PRODUCER)) for k, t in texts.items()]
    for start in range(0, rows, 500):
        cache.put_many("m", items[start : start + 500])
    cache.close()
    assert not path.with_name(path.name + "-wal").exists() or os.path.getsize(str(path) + "-wal") == 0
    return texts


def _leaf_pages(path, name: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (name,))]


def _smash_page(path, pageno: int, page_size: int = 4096) -> None:
    with open(path, "r+b") as f:
        f.seek((pageno - 1) * page_size)
        f.write(os.urandom(page_size))


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "limo.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_every_row_records_its_producer_and_errors_are_not_stored(tmp_path):
    cache = GenerationCache(tmp_path / "gen.sqlite")
    bad_text = Completion({"text": "4"}, 3, 1, "stop")  # a malformed completion from a broken backend
    bad_count = Completion("4", "3", 1, "stop")
    stored = cache.put_many(
        "m", [("a", Completion("4", 3, 1, "stop", producer=PRODUCER)), ("b", dropped("prompt_too_long")),
              ("c", bad_text), ("d", bad_count)],
    )  # fmt: skip
    assert stored == 1 and cache.count() == 1
    got = cache.get_many(["a", "b", "c", "d"])
    assert set(got) == {"a"} and got["a"].producer == PRODUCER and got["a"].cached


def test_an_old_cache_file_is_migrated_and_its_rows_say_they_have_no_producer(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the schema limo wrote before provenance
        conn.execute("CREATE TABLE generations (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                     "completion TEXT NOT NULL, created REAL NOT NULL)")  # fmt: skip
        blob = json.dumps({"text": "old", "prompt_tokens": 1, "completion_tokens": 2, "finish_reason": "stop"})
        conn.execute("INSERT INTO generations VALUES ('old', 'm', ?, 0)", (blob,))
    cache = GenerationCache(path)
    assert cache.get_many(["old"])["old"].producer == LEGACY_PRODUCER
    assert cache.put_many("m", [("new", Completion("new", 1, 1, "stop", producer=PRODUCER))]) == 1
    assert cache.get_many(["new"])["new"].producer == PRODUCER
    cache.close()
    assert GenerationCache(path).count() == 2  # opening it again migrates nothing twice


@pytest.mark.parametrize("damaged", ["generations", "sqlite_autoindex_generations_1"])
def test_a_damaged_cache_is_caught_at_open_and_repair_keeps_every_row_on_intact_pages(tmp_path, damaged):
    path = tmp_path / "gen.sqlite"
    texts = _fill(path, 3000)
    table_leaves = _leaf_pages(path, "generations")
    leaves = _leaf_pages(path, damaged)
    _smash_page(path, leaves[len(leaves) // 2])  # mid-file damage

    with pytest.raises(CacheCorrupt) as err:
        GenerationCache(path)  # at open, before any model would load
    message = str(err.value)
    assert str(path) in message and f"limo cache repair {path}" in message and "\n" not in message

    check = _cli("cache", "check", str(path), cwd=tmp_path)
    assert check.returncode == 2 and f"limo cache repair {path}" in check.stdout + check.stderr
    assert not check_cache(path)["ok"]

    report = repair_cache(path)
    rows_per_leaf = len(texts) / len(table_leaves)
    lost = len(texts) - report["kept_rows"]
    if damaged == "generations":
        assert 0 < lost <= 2 * rows_per_leaf  # only the rows on the smashed page
    else:
        assert lost == 0  # a damaged index loses no row: the table is read directly
    assert os.path.exists(report["damaged_file"])
    repaired = GenerationCache(path)  # passes the check at open now
    found = repaired.get_many(list(texts))
    assert len(found) == report["kept_rows"]
    assert all(found[k].text == texts[k] and found[k].producer == PRODUCER for k in found)  # byte-identical rows
    assert check_cache(path)["ok"]
    assert _cli("cache", "check", str(path), cwd=tmp_path).returncode == 0


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / "gen.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheCorrupt, match="limo cache repair"):
        GenerationCache(path)


def test_repair_with_the_last_pages_damaged_keeps_the_rows_before_them(tmp_path):
    path = tmp_path / "gen.sqlite"
    texts = _fill(path, 3000)
    leaves = _leaf_pages(path, "generations")
    _smash_page(path, max(leaves))  # the rightmost leaf: max(rowid) itself cannot be read
    report = repair_cache(path)
    rows_per_leaf = len(texts) / len(leaves)
    assert 0 < len(texts) - report["kept_rows"] <= 2 * rows_per_leaf
    assert check_cache(path)["ok"]
