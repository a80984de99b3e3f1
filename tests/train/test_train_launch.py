"""The launch checks: ZeRO-3 partitions at load (DeepSpeed on CPU, one gloo process), every DeepSpeed JSON is one
DeepSpeed accepts and agrees with the recipes launched through it, a strategy mismatch is refused, and
`attn_implementation: auto` picks sdpa on this CPU box and says why."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from limo.errors import LimoError
from limo.train.launch import (
    check_deepspeed_batch,
    check_strategy,
    deepspeed_strategy,
    detect_launch,
    resolve_attention,
)

ROOT = Path(__file__).resolve().parents[2]
ACC = ROOT / "recipes" / "accelerate"
# recipe -> the accelerate config its header recommends
LAUNCHES = {
    "limo-qwen2.5-32b.yaml": "multinode-zero3.yaml",
    "train-released-limo.yaml": "multinode-zero3.yaml",
    "qwen2.5-7b.yaml": "zero3.yaml",
    "mistral-small-24b.yaml": "zero3-offload.yaml",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_zero3_partitions_at_load(tiny_model_dir, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed is in the dev extra; it installs and imports on CPU")
    probe = [
        sys.executable,
        str(Path(__file__).parent / "zero3_probe.py"),
        tiny_model_dir,
        str(tmp_path),
        str(_free_port()),
    ]
    res = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["control_partitioned"] is False  # loaded before the training arguments: full weights
    assert got["zero3_partitioned_load"] is True  # the HF DeepSpeed config was active when the model loaded
    assert got["all_partitioned"] and got["local_numel"] == 0 and got["full_numel"] > 0


@pytest.mark.parametrize("name", sorted(p.name for p in ACC.glob("ds_*.json")))
def test_every_deepspeed_json_is_accepted(name):
    deepspeed = pytest.importorskip("deepspeed", reason="DeepSpeed is in the dev extra")
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    config = json.loads((ACC / name).read_text())
    zero = DeepSpeedZeroConfig(**config["zero_optimization"])  # DeepSpeed's own validation of the ZeRO block
    assert zero.stage == 3
    if zero.offload_optimizer is not None:
        # ZeRO-Offload refuses a client (torch) optimizer unless the config names a DeepSpeed one
        assert config["optimizer"]["type"] in ("AdamW", "Adam") and deepspeed.__version__


@pytest.mark.parametrize("recipe", sorted(LAUNCHES))
def test_recipe_and_its_launch_agree(recipe):
    """micro x accumulation x world = global batch, the DeepSpeed JSON trains the recipe's strategy, the plan fits."""
    from limo.recipes import load_recipe
    from limo.train.memory import plan_batch
    from limo.train.sft import memory_plan

    cfg = load_recipe(ROOT / "recipes" / recipe, default_section="train").train
    acc = yaml.safe_load((ACC / LAUNCHES[recipe]).read_text())
    world = acc["num_processes"]
    ds_file = acc["deepspeed_config"]["deepspeed_config_file"]
    env = {
        "WORLD_SIZE": str(world),
        "ACCELERATE_USE_DEEPSPEED": "true",
        "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ROOT / ds_file),
    }
    launch = detect_launch(None, env)
    check_strategy(cfg.strategy, launch)
    assert cfg.gpus == world
    batch = plan_batch(cfg.global_batch_size, cfg.per_device_batch_size, world)
    assert batch.per_device * batch.accumulation * world == cfg.global_batch_size
    check_deepspeed_batch(launch, batch.global_batch, batch.per_device, batch.accumulation)
    plan, _ = memory_plan(cfg, None, devices=world)
    assert plan.fits, (recipe, plan.total_gb)


def test_strategy_mismatch_is_refused(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "limo.cli",
            "train",
            "recipes/qwen2.5-7b.yaml",
            "--data",
            "x.jsonl",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2
    lines = [x for x in res.stderr.strip().splitlines() if x.strip()]
    assert "strategy mismatch" in lines[-1] and "zero3" in lines[-1] and "ddp" in lines[-1]
    assert "Traceback" not in res.stderr
    offload = detect_launch(
        None,
        {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ACC / "ds_zero3_offload.json")},
    )
    assert offload.strategy == "zero3-offload"
    with pytest.raises(LimoError, match="strategy zero3 but this launch trains zero3-offload"):
        check_strategy("zero3", offload)
    assert detect_launch(None, {"ACCELERATE_USE_FSDP": "true", "WORLD_SIZE": "8"}).strategy == "fsdp"
    assert deepspeed_strategy({"zero_optimization": {"stage": 2}}) == "zero2"


def test_deepspeed_batch_numbers_must_match(tmp_path):
    ds = json.loads((ACC / "ds_zero3.json").read_text())
    ds["train_batch_size"] = 32
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(ds))
    launch = detect_launch(str(path), {"WORLD_SIZE": "8"})
    with pytest.raises(LimoError, match=r"ds.json: train_batch_size is 32 but the recipe needs 64"):
        check_deepspeed_batch(launch, 64, 1, 8)
    check_deepspeed_batch(detect_launch(str(ACC / "ds_zero3.json"), {"WORLD_SIZE": "8"}), 64, 1, 8)  # "auto"


def test_attention_auto_picks_sdpa_here_and_says_why():
    attention, why = resolve_attention("auto")
    assert attention == "sdpa"
    assert "flash_attn does not import" in why
    with pytest.raises(LimoError, match="flash_attention_2: flash_attn does not import"):
        resolve_attention("flash_attention_2")
    assert resolve_attention("eager") == ("eager", "set in the recipe")
