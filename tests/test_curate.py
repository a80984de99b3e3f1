"""`limo curate`: recipe building, the stage list, a model-free end-to-end run, and resume after kill -9 during the
difficulty stage (real SmolLM2, subprocess): no finished generation is repeated and the output is identical."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from limo.curate import build_curate_recipe, curate_stages, run_curate
from limo.errors import LimoError
from limo.paths import REPO_ROOT
from limo.recipes import load_recipe
from limo.runs import Run

DEMO = str(REPO_ROOT / "recipes" / "data" / "demo_pool.jsonl")


def test_build_ignores_other_commands_keys_and_seeds_stages():
    r = build_curate_recipe(
        {
            "name": "x",
            "train": {"lr": 1},
            "eval": {},
            "experiment": {},
            "seed": 5,
            "pool": {"sources": [{"name": "d", "path": DEMO}]},
            "diversity": {"target_size": 3},
        }
    )
    assert r.seed == 5 and r.diversity.seed == 5 and r.difficulty.seed == 5 and r.diversity.target_size == 3
    assert [s.name for s in curate_stages(r)][:5] == ["pool", "dedup", "decontaminate", "difficulty", "diversity"]
    r = build_curate_recipe({"seed": 5, "pool": {"sources": [{"name": "d", "path": DEMO}]}, "diversity": {"seed": 9}})
    assert r.diversity.seed == 9


def test_build_errors_name_the_key(tmp_path):
    with pytest.raises(LimoError, match="unknown key"):
        build_curate_recipe({"pool": {"sources": [{"name": "d", "path": DEMO}]}, "dedupe": {}})
    with pytest.raises(LimoError, match="recipe.dedup"):
        build_curate_recipe({"pool": {"sources": [{"name": "d", "path": DEMO}]}, "dedup": {"threshold": "high"}})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"pool": {"sources": [{"name": "d", "path": DEMO}]}}))
    r = load_recipe(path, ["dedup.threshold=0.9", "difficulty.weak_drop_at=2"]).curate
    assert r.dedup.threshold == 0.9 and r.difficulty.weak_drop_at == 2


def test_model_free_run_and_resume_from_disk(tmp_path):
    recipe = build_curate_recipe(
        {
            "seed": 1,
            "pool": {"sources": [{"name": "limo-demo", "path": DEMO}]},
            "difficulty": {"enabled": False},
            "diversity": {"target_size": 12},
        }
    )
    run_curate(recipe, tmp_path / "run", tmp_path / "gen.sqlite")
    summary = {s["stage"]: s for s in json.loads((tmp_path / "run" / "summary.json").read_text())}
    assert summary["pool"]["rows_read"] == 43 and summary["pool"]["dropped_by_reason"] == {"no_answer": 1}
    assert summary["dedup"]["dropped_by_reason"] == {"exact_duplicate": 2, "near_duplicate": 2}
    assert summary["diversity"]["rows_out"] == 12
    for s in summary.values():
        if s["stage"] != "pool":
            assert s["rows_in"] == s["rows_out"] + s["dropped"]
    assert (tmp_path / "run" / "03_decontaminate" / "contamination_report.json").exists()
    saved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert saved["diversity"]["target_size"] == 12 and saved["seed"] == 1
    first = pq.read_table(tmp_path / "run" / "05_diversity" / "data.parquet").to_pylist()
    # a rerun loads every stage from disk; a changed diversity config reruns only diversity
    run_curate(recipe, tmp_path / "run", tmp_path / "gen.sqlite")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert all(s["resumed"] for s in summary)
    recipe.diversity.target_size = 10
    run_curate(recipe, tmp_path / "run", tmp_path / "gen.sqlite")
    summary = {s["stage"]: s for s in json.loads((tmp_path / "run" / "summary.json").read_text())}
    assert summary["decontaminate"]["resumed"] and not summary["diversity"]["resumed"]
    assert summary["diversity"]["rows_out"] == 10 and len(first) == 12


def test_cli_bad_input_is_one_clear_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"question": "a?", "answer": "1"}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"pool": {"sources": [{"name": "b", "path": str(tmp_path / "bad.jsonl")}]}}))
    out = subprocess.run(
        [sys.executable, "-m", "limo.cli", "curate", str(recipe), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert "bad.jsonl" in out.stderr and "line 1" in out.stderr and "'problem'" in out.stderr
    assert "Traceback" not in out.stderr


def test_second_curate_on_a_locked_run_directory_refuses(tmp_path):
    """A live process holds RUN/.lock (as a running `limo curate` does); a second `limo curate` on the same --out
    exits 2 with one line and writes nothing; after the holder exits, the run proceeds."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "pool": {"sources": [{"name": "d", "path": DEMO}]},
                "decontaminate": {"enabled": False},
                "difficulty": {"enabled": False},
                "diversity": {"target_size": 3},
            }
        )
    )
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from limo.runs import Run\nwith Run(sys.argv[1]).lock():\n"
            "    print('held', flush=True); sys.stdin.read()",
            str(run_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        cmd = [sys.executable, "-m", "limo.cli", "curate", str(recipe), "--out", str(run_dir)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "in use by another limo process" in lines[0] and str(run_dir) in out.stderr
        assert not (run_dir / "01_pool").exists() and not (run_dir / "recipe.yaml").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with Run(run_dir).lock():  # released by the holder's exit
        pass


def _cache_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=60) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_resume_after_kill_9_during_difficulty(tmp_path):
    recipe = {
        "seed": 0,
        "pool": {"sources": [{"name": "limo-demo", "path": DEMO, "limit": 5, "seed": 2}]},
        "decontaminate": {"enabled": False},
        # one batch per round: a resumed round has the same batch as the uninterrupted one
        "difficulty": {
            "weak": {
                "engine": {"model": "smollm2-135m", "engine": "hf", "batch_size": 8},
                "sampling": {"temperature": 0.8, "max_tokens": 12, "seed": 0},
                "n": 3,
            }
        },
        "diversity": {"target_size": 4},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    cmd = [sys.executable, "-m", "limo.cli", "curate", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # reference: one uninterrupted run with its own cache
    subprocess.run(
        cmd + ["--out", str(tmp_path / "a"), "--cache", str(tmp_path / "a.sqlite")],
        check=True,
        capture_output=True,
        timeout=1800,
        env=env,
    )
    stats_a = json.loads((tmp_path / "a" / "04_difficulty" / "stats.json").read_text())
    total = stats_a["engines"]["tier 1: smollm2-135m"]["generated"]
    assert total == _cache_rows(tmp_path / "a.sqlite") >= 6

    # interrupted run: kill -9 once some (not all) generations are in the cache
    cache_b = tmp_path / "b.sqlite"
    proc = subprocess.Popen(
        cmd + ["--out", str(tmp_path / "b"), "--cache", str(cache_b)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.time() + 1800
    while _cache_rows(cache_b) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = _cache_rows(cache_b)
    assert 3 <= at_kill < total
    assert (tmp_path / "b" / "03_decontaminate" / "done").exists()
    assert not (tmp_path / "b" / "04_difficulty" / "done").exists()

    subprocess.run(
        cmd + ["--out", str(tmp_path / "b"), "--cache", str(cache_b)],
        check=True,
        capture_output=True,
        timeout=1800,
        env=env,
    )
    eng = json.loads((tmp_path / "b" / "04_difficulty" / "stats.json").read_text())["engines"]["tier 1: smollm2-135m"]
    assert eng["cache_hits"] == at_kill  # everything finished before the kill was reused
    assert eng["generated"] == total - at_kill  # and only the rest was generated
    assert _cache_rows(cache_b) == total
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert [s["resumed"] for s in summary][:3] == [True, True, True]
    for stage in ("04_difficulty", "05_diversity"):
        for part in ("data", "dropped"):
            a = pq.read_table(tmp_path / "a" / stage / f"{part}.parquet").to_pylist()
            b = pq.read_table(tmp_path / "b" / stage / f"{part}.parquet").to_pylist()
            assert a == b


def _scale_recipe(tmp_path, pool_file, **executor):
    """pool (synthetic + 30 MATH500 problems, so decontamination drops some) -> dedup -> decontaminate -> diversity."""
    from limo.paths import data_dir

    return build_curate_recipe(
        {
            "seed": 3,
            "executor": {"kind": "local"} | executor,
            "pool": {
                "sources": [
                    {"name": "syn", "path": str(pool_file)},
                    {"name": "m500", "path": str(data_dir() / "benchmarks" / "math500.jsonl"), "limit": 30},
                ],
                "invalid_rows": "drop",
            },
            "difficulty": {"enabled": False},
            "diversity": {"target_size": 200},
            "solutions": {"models": []},
        }
    )


def _stage_outputs(run_dir: Path) -> dict:
    out = {}
    for stage in ("01_pool", "02_dedup", "03_decontaminate", "05_diversity"):
        kept = pq.read_table(run_dir / stage / "data.parquet", columns=["id"]).column("id").to_pylist()
        dropped = pq.read_table(run_dir / stage / "dropped.parquet")
        reasons = dropped.column("drop_reason").to_pylist() if dropped.num_rows else []
        ids = dropped.column("id").to_pylist() if dropped.num_rows else []
        out[stage] = (kept, sorted(zip(ids, reasons, strict=True)))
    return out


def _curate_part1(recipe, run_dir, cache):
    from limo.curate import curate_stages
    from limo.runs import Run, StageContext, run_stages
    from limo.streaming.executors import make_executor

    executor = make_executor(recipe.executor)
    stages = curate_stages(recipe)[:5]

    def context(stage_dir):
        return StageContext(run_dir=run_dir, stage_dir=stage_dir, generation_cache=cache, executor=executor)

    from datasets import Dataset

    run_stages(Run(run_dir), stages, Dataset.from_dict({}), context)
    return _stage_outputs(run_dir)


def test_streaming_in_small_shards_equals_one_batch_and_in_memory_dedup(shared_data, tmp_path):
    """Same kept ids and drop reasons whether the stages see 3,000 rows in shards of 170 (batches of 64) or in one
    batch; dedup's decisions equal the in-memory find_duplicates over the same rows; a malformed line is counted."""
    from limo.stages import dedup
    from limo.streaming.synthetic import write_pool

    pool_file = write_pool(tmp_path / "pool.jsonl", 3000, seed=1, dup_rate=0.2, bad_line=1234)
    small = _curate_part1(_scale_recipe(tmp_path, pool_file, shard_rows=170, batch_rows=64), tmp_path / "a", None)
    whole = _curate_part1(_scale_recipe(tmp_path, pool_file, shard_rows=10**6), tmp_path / "b", None)
    assert small == whole
    pool_kept, pool_dropped = small["01_pool"]
    assert ("syn-line-1234", "invalid_row") in pool_dropped
    bad = pq.read_table(tmp_path / "a" / "01_pool" / "dropped.parquet").to_pylist()
    assert [(r["pool_line"], r["pool_file"]) for r in bad if r["drop_reason"] == "invalid_row"] == [
        (1234, str(pool_file))
    ]
    reasons = {r for _, r in small["02_dedup"][1]}
    assert reasons == {"exact_duplicate", "near_duplicate"}
    assert {r for _, r in small["03_decontaminate"][1]} == {"contaminated"}
    assert len(small["05_diversity"][0]) == 200
    # in-memory reference for dedup on the pool's output
    rows = pq.read_table(tmp_path / "a" / "01_pool" / "data.parquet").to_pylist()
    order = dedup.visiting_order(
        pq.read_table(tmp_path / "a" / "01_pool" / "data.parquet", columns=["source"]).column("source"),
        np.asarray([dedup.metadata_count(r) for r in rows], dtype=np.int8),
        None,
    )
    found = dedup.find_duplicates([r["problem"] for r in rows], order.tolist(), dedup.Config())
    expected = sorted((rows[i]["id"], reason) for i, (_, reason, _) in found.items())
    assert small["02_dedup"][1] == expected


_PART1_SCRIPT = """
import sys
from pathlib import Path
from tests.test_curate import _curate_part1, _scale_recipe
pool, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
executor = {"kind": "ray", "num_cpus": 2} if sys.argv[3:] == ["ray"] else {}
_curate_part1(_scale_recipe(run_dir.parent, pool, shard_rows=1000, batch_rows=250, **executor), run_dir, None)
"""


def test_kill_9_during_dedup_then_rerun_redoes_only_unfinished_shards(shared_data, tmp_path):
    """kill -9 while dedup writes its signature shards; the rerun keeps every finished shard file (same mtime),
    writes only the missing ones, and the final outputs equal an uninterrupted run's."""
    from limo.streaming.synthetic import write_pool

    pool_file = write_pool(tmp_path / "pool.jsonl", 20_000, seed=2)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _PART1_SCRIPT, str(pool_file)]
    subprocess.run([*cmd, str(tmp_path / "ref")], check=True, env=env, cwd=REPO_ROOT, timeout=900)
    shards = tmp_path / "run" / "02_dedup" / "parts" / "signatures"
    proc = subprocess.Popen([*cmd, str(tmp_path / "run")], env=env, cwd=REPO_ROOT)
    deadline = time.time() + 600
    while not (shards / "00003.parquet").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    total = -(-pq.ParquetFile(tmp_path / "ref" / "01_pool" / "data.parquet").metadata.num_rows // 1000)
    assert 4 <= len(finished) < total, f"kill landed outside the signature pass: {sorted(finished)}"
    assert not (tmp_path / "run" / "02_dedup" / "done").exists()
    subprocess.run([*cmd, str(tmp_path / "run")], check=True, env=env, cwd=REPO_ROOT, timeout=900)
    after = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    assert len(after) == total
    assert {name: after[name] for name in finished} == finished  # finished shards were not redone
    assert _stage_outputs(tmp_path / "run") == _stage_outputs(tmp_path / "ref")


@pytest.mark.slow  # starts a 2-worker Ray cluster (no model, no server)
@pytest.mark.timeout(1800)
def test_ray_data_executor_on_2_workers_equals_local_on_20k_rows(shared_data, tmp_path):
    from limo.streaming.synthetic import write_pool

    pool_file = write_pool(tmp_path / "pool.jsonl", 20_000, seed=4)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _PART1_SCRIPT, str(pool_file)]
    subprocess.run([*cmd, str(tmp_path / "local")], check=True, env=env, cwd=REPO_ROOT, timeout=900)
    subprocess.run([*cmd, str(tmp_path / "ray"), "ray"], check=True, env=env, cwd=REPO_ROOT, timeout=1500)
    local, ray = _stage_outputs(tmp_path / "local"), _stage_outputs(tmp_path / "ray")
    assert len(local["02_dedup"][1]) > 1000 and len(local["03_decontaminate"][1]) > 0
    assert ray == local
    # the map passes really ran on a 2-CPU Ray cluster
    for stage in ("02_dedup", "03_decontaminate"):
        assert json.loads((tmp_path / "ray" / stage / "stats.json").read_text())["executor"]["cpus"] == 2
        assert json.loads((tmp_path / "local" / stage / "stats.json").read_text())["executor"] == {"kind": "local"}
