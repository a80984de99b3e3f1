"""The run store: stage outputs, done markers, chained config hashes, resume, and row accounting."""

from dataclasses import dataclass

import pytest
from datasets import Dataset

from limo.errors import LimoError
from limo.runs import Run, Stage, StageContext, StageResult, run_stages


@dataclass
class KeepEven:
    column: str = "x"
    modulus: int = 2


def keep_even(ds, cfg, ctx):
    rows = ds.to_list()
    kept = [r for r in rows if r[cfg.column] % 2 == 0]
    dropped = [{**r, "drop_reason": "odd"} for r in rows if r[cfg.column] % 2]
    return StageResult.from_rows(kept, dropped, {"checked": len(rows)})


@dataclass
class AddOne:
    amount: int = 1


def add(ds, cfg, ctx):
    return StageResult.from_rows([{**r, "y": r["x"] + cfg.amount} for r in ds.to_list()], [])


def _context(tmp_path):
    return lambda stage_dir: StageContext(
        run_dir=tmp_path, stage_dir=stage_dir, generation_cache=tmp_path / "c.sqlite"
    )


def test_stages_write_outputs_and_resume(tmp_path):
    calls = []

    def counting(fn):
        def wrapped(ds, cfg, ctx):
            calls.append(fn.__name__)
            return fn(ds, cfg, ctx)

        return wrapped

    source = Dataset.from_list([{"x": i} for i in range(6)])
    stages = [Stage("filter", KeepEven(), counting(keep_even)), Stage("add", AddOne(), counting(add))]
    run = Run(tmp_path / "run")
    out = run_stages(run, stages, source, _context(tmp_path))
    assert out["y"] == [1, 3, 5]
    stats = run.stats(1, "filter")
    assert stats["rows_in"] == 6 and stats["rows_out"] == 3 and stats["dropped_by_reason"] == {"odd": 3}
    assert stats["checked"] == 6
    assert run.load(1, "filter", "dropped")["drop_reason"] == ["odd"] * 3
    for name in ("data.parquet", "dropped.parquet", "stats.json", "config.yaml", "done"):
        assert (run.stage_dir(1, "filter") / name).exists()

    # unchanged configs: both stages load from disk
    run_stages(run, stages, source, _context(tmp_path))
    assert calls == ["keep_even", "add"]
    # a changed downstream config reruns only that stage
    stages[1] = Stage("add", AddOne(amount=10), counting(add))
    assert run_stages(run, stages, source, _context(tmp_path))["y"] == [10, 12, 14]
    assert calls == ["keep_even", "add", "add"]
    # a crash before the done marker: that stage is redone, the next one (same chained hash) is loaded
    (run.stage_dir(1, "filter") / "done").unlink()
    run_stages(run, stages, source, _context(tmp_path))
    assert calls == ["keep_even", "add", "add", "keep_even"]
    # a changed upstream config reruns everything after it
    stages[0] = Stage("filter", KeepEven(column="x", modulus=3), counting(keep_even))
    run_stages(run, stages, source, _context(tmp_path))
    assert calls[-2:] == ["keep_even", "add"]


def test_lost_rows_and_missing_reasons_are_errors(tmp_path):
    source = Dataset.from_list([{"x": i} for i in range(4)])

    def loses_rows(ds, cfg, ctx):
        return StageResult.from_rows(ds.to_list()[:2], [])

    with pytest.raises(LimoError, match="lost rows: 4 in, 2 out, 0 dropped"):
        run_stages(Run(tmp_path / "a"), [Stage("bad", KeepEven(), loses_rows)], source, _context(tmp_path))

    def no_reason(ds, cfg, ctx):
        return StageResult.from_rows(ds.to_list()[:2], [{"x": 2}, {"x": 3}])

    with pytest.raises(LimoError, match="without a drop_reason"):
        run_stages(Run(tmp_path / "b"), [Stage("bad", KeepEven(), no_reason)], source, _context(tmp_path))
