"""`limo train --data FILE` on LIMO's released schema (question/solution/answer): 2 steps of SmolLM2 on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_limo_train_on_a_4_row_gair_limo_file(tmp_path):
    rows = [
        {
            "question": f"What is {a}+{b}?",
            "solution": f"{a}+{b} = {a + b}, so \\boxed{{{a + b}}}.",
            "answer": str(a + b),
        }
        for a, b in ((2, 3), (4, 5), (6, 7), (8, 9))
    ]
    data = tmp_path / "limo.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "sft"
    sets = ["max_steps=2", "cutoff=128", "global_batch_size=2", "per_device_batch_size=1", "save_strategy=no"]
    cmd = [sys.executable, "-m", "limo.cli", "train", "recipes/smollm2-135m-cpu.yaml", "--data", str(data)]
    cmd += ["--out", str(out)] + [a for s in sets for a in ("--set", s)]
    res = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["loss_weighting"] == "sample" and summary["attention"] == "sdpa"
    assert all(loss > 0 for _, loss in summary["losses"])
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["rows_in"] == stats["rows_out"] == 4 and 0 < stats["loss_tokens"] < stats["tokens"]
    shown = res.stdout + res.stderr  # the rich console writes to stderr
    assert "attention: sdpa" in shown and "loss weighting: sample" in shown
