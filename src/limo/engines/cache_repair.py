"""`limo cache check PATH` and `limo cache repair PATH`: find and recover a damaged generation cache.

`check` runs SQLite's full `PRAGMA integrity_check` and counts the rows it can read. `repair` copies every row it
can still read into a fresh file, then moves the damaged file aside (`PATH.damaged-<time>`) and puts the fresh one in
its place. Rows are read by rowid range; a range that hits a damaged page is split in halves down to single rows,
so every row that SQLite can still read is kept and only the rows on damaged pages are lost. The new file gets the
current schema (old files gain the `producer` column).
"""

import os
import sqlite3
import time
from pathlib import Path

from limo.engines.cache import SCHEMA
from limo.errors import LimoError

RANGE = 4096  # rowids read per query while the file reads cleanly


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise LimoError(f"{path}: no such cache file")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def check_cache(path: Path) -> dict:
    """{'path', 'ok', 'problems' (first 20 lines of integrity_check), 'readable_rows'}."""
    conn = _open_read_only(path)
    try:
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as e:
            problems = [str(e)]
        ok = problems == ["ok"]
        readable = sum(1 for _ in readable_rows(conn)) if ok or _has_table(conn) else 0
    finally:
        conn.close()
    return {"path": str(path), "ok": ok, "problems": [] if ok else problems, "readable_rows": readable}


def _has_table(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM generations LIMIT 1").fetchall()
        return True
    except sqlite3.DatabaseError:
        return False


def _columns(conn: sqlite3.Connection) -> list[str]:
    names = [row[1] for row in conn.execute("PRAGMA table_info(generations)")]
    return [c for c in ("key", "model", "completion", "created", "producer") if c in names]


def _max_rowid(conn: sqlite3.Connection) -> int:
    try:
        return conn.execute("SELECT max(rowid) FROM generations").fetchone()[0] or 0
    except sqlite3.DatabaseError:  # the rightmost pages are damaged: probe upwards until a power of two reads empty
        # rows are only ever appended (rowid = max + 1) and each takes at least 64 bytes (its key), so the file size
        # bounds the largest rowid; the probe stops there even if every probe fails
        pages, page_size = (conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
        bound = max(RANGE, pages * (page_size // 64))
        top = RANGE
        while top < bound:
            try:
                if not conn.execute("SELECT 1 FROM generations WHERE rowid >= ? LIMIT 1", (top,)).fetchall():
                    return top
            except sqlite3.DatabaseError:
                pass
            top *= 2
        return bound


def readable_rows(conn: sqlite3.Connection):
    """Yield (key, model, completion, created, producer) for every row SQLite can still read."""
    try:
        table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'generations'").fetchone()
    except sqlite3.DatabaseError:  # no readable schema (not a database at all): no row is reachable
        table = None
    if table is None:  # e.g. an empty file: without this, the rowid probe below would run to 2**40
        return
    columns = _columns(conn)
    select = ", ".join(columns) + (", NULL" if "producer" not in columns else "")
    query = f"SELECT {select} FROM generations WHERE rowid BETWEEN ? AND ?"

    def read(lo: int, hi: int):
        try:
            rows = conn.execute(query, (lo, hi)).fetchall()
        except sqlite3.DatabaseError:
            if lo == hi:
                return  # this row sits on a damaged page
            mid = (lo + hi) // 2
            yield from read(lo, mid)
            yield from read(mid + 1, hi)
            return
        yield from rows

    top = _max_rowid(conn)
    for lo in range(0, top + 1, RANGE):
        yield from read(lo, min(top, lo + RANGE - 1))


def repair_cache(path: Path) -> dict:
    """Copy every readable row into a fresh cache file and swap it in; returns counts and where the old file went."""
    source = _open_read_only(path)
    fresh = path.with_name(path.name + ".repairing")
    fresh.unlink(missing_ok=True)
    target = sqlite3.connect(fresh, isolation_level=None)
    kept = 0
    try:
        target.execute(SCHEMA)
        target.execute("BEGIN")
        for row in readable_rows(source):
            target.execute("INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?)", row)
            kept += 1
        target.execute("COMMIT")
    finally:
        source.close()
        target.close()
    damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, damaged)
    for suffix in ("-wal", "-shm"):  # the old write-ahead log belongs to the damaged file
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, damaged.with_name(damaged.name + suffix))
    os.replace(fresh, path)
    return {"path": str(path), "kept_rows": kept, "damaged_file": str(damaged)}
