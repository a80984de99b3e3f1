"""Multi-process training on CPU (gloo): a 2-process torchrun run of the embedded model, and the multi-node accelerate
config exercised with 2 processes acting as 2 "nodes" on loopback (machine_rank 0 and 1, main_process_ip 127.0.0.1).
Both check that the processes really form one group: the data is sharded (epoch advances by the global batch), the
gradient accumulation is recomputed for 2 devices, and rank 0 alone saves a loadable model."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(data, out, model: str, global_batch: int) -> list[str]:
    sets = [
        f"model={model}",
        "max_steps=3",
        "cutoff=128",
        f"global_batch_size={global_batch}",
        "per_device_batch_size=1",
        "save_strategy=no",
        "learning_rate=1e-4",
    ]
    args = ["-m", "limo.cli", "train", "recipes/smollm2-135m-cpu.yaml", "--data", str(data), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _check_saved(out: Path, rows: int, global_batch: int) -> dict:
    from transformers import AutoModelForCausalLM

    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert summary["batch"] == {
        "global_batch": global_batch,
        "per_device": 1,
        "devices": 2,
        "accumulation": global_batch // 2,
    }
    assert summary["epochs"] == pytest.approx(3 * global_batch / rows)  # each step consumed the global batch once
    AutoModelForCausalLM.from_pretrained(out)
    assert (out / "tokenizer.json").exists() and (out / "chat_template.jinja").exists()
    return summary


@pytest.mark.slow
def test_torchrun_two_processes_gloo(math_messages, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        *_train_args(math_messages, out, "smollm2-135m", 2),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    _check_saved(out, 32, 2)


@pytest.mark.slow
def test_multinode_accelerate_config_on_loopback(tiny_model_dir, math_messages, tmp_path):
    """recipes/accelerate/multinode-cpu.yaml: 2 machines x 1 process; each "node" is its own `accelerate launch`."""
    out = tmp_path / "multinode"
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**_env(), "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
        cmd = [
            str(BIN / "accelerate"),
            "launch",
            "--config_file",
            "recipes/accelerate/multinode-cpu.yaml",
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            port,
            "--num_cpu_threads_per_process",
            "1",
            *_train_args(math_messages, out, tiny_model_dir, 4),
        ]
        log = open(tmp_path / f"node{rank}.log", "w")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for p, log in procs:
        p.wait(timeout=1200)
        log.close()
    logs = [(tmp_path / f"node{r}.log").read_text() for r in (0, 1)]
    assert [p.returncode for p, _ in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    _check_saved(out, 32, 4)
