"""`limo generate`: run a model over a JSONL file of prompts, through the generation cache.

Each input line has `prompt` (a string) or `messages` (chat messages), optionally `id`. Output lines keep the
input fields and add `completions` (text, token counts, finish reason, producer) for the n samples. A request the
engine refused (a prompt longer than the model's context, a task that kept failing) has finish_reason "error" and
an `error` reason; the summary counts them by reason.

    limo generate --model smollm2-135m --engine hf --input prompts.jsonl --out out.jsonl --n 4 --temperature 0.7
"""

import time
from pathlib import Path

from limo.console import console, kv_table, progress_bar
from limo.engines import EngineConfig, SamplingParams, make_engine
from limo.errors import InputError
from limo.io import iter_jsonl, write_jsonl


def read_prompts(path: Path) -> list[dict]:
    rows = []
    for line_no, row in iter_jsonl(path):
        if "messages" in row:
            msgs = row["messages"]
            if (
                not isinstance(msgs, list)
                or not msgs
                or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in msgs
                )
            ):
                raise InputError(
                    "expected a non-empty list of {role, content} objects with string values",
                    path=str(path),
                    line=line_no,
                    field="messages",
                )
        elif "prompt" in row:
            if not isinstance(row["prompt"], str):
                raise InputError("expected a string", path=str(path), line=line_no, field="prompt")
        else:
            raise InputError("each line needs 'prompt' or 'messages'", path=str(path), line=line_no, field="prompt")
        rows.append(row)
    return rows


def run_generate(
    engine_cfg: EngineConfig, input_path: Path, out_path: Path, sampling: SamplingParams, n: int, cache: Path | None
) -> dict:
    rows = read_prompts(input_path)
    engine = make_engine(engine_cfg, cache)
    prompts = [row.get("messages", row.get("prompt")) for row in rows]
    start = time.perf_counter()
    with progress_bar(len(prompts) * n, f"generating ({engine_cfg.model})") as advance:
        outputs = engine.generate(prompts, sampling, n=n, progress=advance)
    seconds = time.perf_counter() - start
    engine.close()
    records = [{**row, "completions": [c.to_dict() for c in outs]} for row, outs in zip(rows, outputs, strict=True)]
    write_jsonl(out_path, records)
    stats = engine.stats.to_dict()
    summary = {
        "prompts": len(rows),
        "requests": stats["requests"],
        "cache_hits": stats["cache_hits"],
        "generated": stats["generated"],
        "not generated (errors)": ", ".join(f"{k}: {v}" for k, v in sorted(stats["errors"].items())) or "0",
        "completion_tokens": stats["completion_tokens"],
        "tokens/s (generation)": stats["tokens_per_second"],
        "wall seconds": round(seconds, 2),
        "output": str(out_path),
    }
    console.print(kv_table("limo generate", summary))
    return summary
