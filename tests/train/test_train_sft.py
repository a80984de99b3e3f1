"""SFT end to end on CPU: padding-free correctness, the smollm2 acceptance run (loss goes down, the saved model
reloads, `limo eval` runs on it), resume from the last checkpoint, LoRA merged on save, every batching mode."""

import json
import subprocess
import sys

import pytest

from limo.train.sft import TrainConfig, build_train_config, run_train


def _cfg(model: str, data, **kw) -> TrainConfig:
    base = dict(
        model=model,
        data=str(data),
        chat_template="chatml",
        cutoff=192,
        learning_rate=1e-3,
        epochs=1,
        global_batch_size=4,
        per_device_batch_size=2,
        gradient_checkpointing=False,
        save_strategy="no",
        logging_steps=1,
    )
    base.update(kw)
    return build_train_config(base)


def test_padding_free_batch_equals_separate_sequences(tiny_model_dir):
    """On CPU (sdpa) a flattened batch with position_ids must not attend across samples. transformers builds the
    block-diagonal mask from position_ids only without a KV cache, which is how TRL calls the model
    (use_cache=False)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    a, b = torch.arange(5, 25), torch.arange(100, 111)
    with torch.no_grad():
        sep = [model(input_ids=x[None]).logits[0] for x in (a, b)]
        flat = model(
            input_ids=torch.cat([a, b])[None],
            position_ids=torch.cat([torch.arange(len(a)), torch.arange(len(b))])[None],
            use_cache=False,
        ).logits[0]
    assert torch.allclose(flat[: len(a)], sep[0], atol=1e-4)
    assert torch.allclose(flat[len(a) :], sep[1], atol=1e-4)


@pytest.mark.slow
def test_cpu_sft_smollm2_loss_goes_down_and_model_reloads(shared_data, tmp_path):
    """8 short MATH solutions, 3 epochs of batch 1 (24 steps): the last quarter of the steps sees each example for
    the third time, so its loss must be clearly below the first quarter's (unseen examples)."""
    from conftest import build_messages_jsonl

    from limo.engines.base import EngineConfig, SamplingParams
    from limo.engines.cache import CachedEngine, GenerationCache

    data = tmp_path / "m8.jsonl"
    assert build_messages_jsonl(data, 8, max_solution_chars=140) == 8
    out = tmp_path / "sft"
    cfg = _cfg("smollm2-135m", data, learning_rate=1e-4, max_steps=24, global_batch_size=1, per_device_batch_size=1)
    assert run_train(cfg, out) == out
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 24
    assert summary["last_window_loss"] < summary["first_window_loss"] * 0.9, summary["losses"]
    assert json.loads((out / "memory_plan.json").read_text())["batch"]["accumulation"] == 1
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["rows_in"] == stats["rows_out"] == 8 and stats["loss_tokens"] < stats["tokens"]
    # the saved directory is a complete model: weights, tokenizer, the training chat template
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert "generation" in (out / "chat_template.jinja").read_text()
    engine = CachedEngine(
        EngineConfig(model=str(out), engine="hf", batch_size=2), GenerationCache(tmp_path / "g.sqlite")
    )
    [[completion]] = engine.generate(
        [[{"role": "user", "content": "What is 2+3?"}]], SamplingParams(temperature=0.0, max_tokens=16), n=1
    )
    assert completion.text.strip() and completion.completion_tokens > 0
    # `limo eval --model DIR` on the trained model
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"id": "q1", "problem": "What is 2+3?", "answer": "5"}) + "\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "limo.cli",
            "eval",
            "--model",
            str(out),
            "--benchmark",
            str(bench),
            "--max-tokens",
            "16",
            "--out",
            str(tmp_path / "eval"),
            "--cache",
            str(tmp_path / "e.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "eval" / "results.json").exists()


def test_resume_from_last_checkpoint(tiny_model_dir, math_messages, tmp_path):
    out = tmp_path / "resume"
    first = _cfg(tiny_model_dir, math_messages, max_steps=4, save_strategy="steps", save_steps=2, save_total_limit=1)
    run_train(first, out)
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    first_losses = json.loads((out / "train_summary.json").read_text())["losses"]
    again = _cfg(tiny_model_dir, math_messages, max_steps=6, save_strategy="steps", save_steps=2, save_total_limit=1)
    run_train(again, out)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-4") and summary["steps"] == 6
    assert [s for s, _ in summary["losses"]] == [1, 2, 3, 4, 5, 6]
    assert summary["losses"][:4] == first_losses  # steps 1..4 come from the checkpoint's log, not a rerun


def test_lora_adapter_is_merged_into_a_loadable_model(tiny_model_dir, math_messages, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    cfg = _cfg(tiny_model_dir, math_messages, max_steps=3, peft={"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0})
    run_train(cfg, out)
    assert (out / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not any("lora" in k for k in merged.state_dict())
    diff = [not torch.equal(merged.state_dict()[k], v) for k, v in base.state_dict().items() if "q_proj" in k]
    assert any(diff)  # the merged weights carry the adapter's update


@pytest.mark.parametrize("batching", ["packed", "padded", "padding_free"])
def test_every_batching_mode_trains(tiny_model_dir, math_messages, tmp_path, batching):
    out = tmp_path / batching
    run_train(_cfg(tiny_model_dir, math_messages, max_steps=2, batching=batching), out)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and all(loss > 0 for _, loss in summary["losses"])


def test_qlora_on_cpu_is_a_clear_error(tiny_model_dir, math_messages, tmp_path):
    from limo.errors import LimoError

    cfg = _cfg(tiny_model_dir, math_messages, max_steps=1, peft={"method": "qlora"})
    with pytest.raises(LimoError, match="qlora needs a CUDA GPU"):
        run_train(cfg, tmp_path / "q")
