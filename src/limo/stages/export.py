"""Stage 10 `export`: write the selected set for training, in every format people train with, plus the data card.

    RUN/export/hf/                     datasets.save_to_disk: `messages` [system, user, assistant] + metadata
    RUN/export/messages.jsonl          {"id", "messages"} per line (what `limo train` reads)
    RUN/export/llamafactory/limo.json  LLaMA-Factory "sharegpt" data in its OpenAI-messages variant
    RUN/export/llamafactory/dataset_info.json   the matching dataset description (formatting, columns, tags)
    RUN/datacard.md, RUN/datacard.json, RUN/datacard/*.png   (limo.report.datacard)

The assistant turn is the candidate's text; reasoning kept apart by the solutions stage is put back in front as
`<think>…</think>` (`reasoning: think_tags`) or left out (`reasoning: drop`).
`push_to_hub: org/name` uploads the HF dataset (not run in tests: no network here); it fails with a clear error
when offline or without a token. Run as part of `limo curate RECIPE.yaml --out RUN` (recipe key `export`).
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from datasets import Dataset

from limo.errors import LimoError
from limo.io import write_json, write_jsonl
from limo.records import LIMO_SYSTEM_PROMPT, chat_messages
from limo.runs import StageContext, StageResult
from limo.stages.common import to_rows
from limo.stages.solutions import assistant_text

FORMATS = ("hf", "messages", "llamafactory")
META_COLUMNS = (
    "id",
    "problem",
    "answer",
    "source",
    "subject",
    "level",
    "candidate_id",
    "candidate_model",
    "quality_score",
    "quality_level",
    "rule_score",
    "judge_score",
    "completion_tokens",
)

# LLaMA-Factory data/README.md, "OpenAI Format": sharegpt formatting with role/content tags.
LLAMAFACTORY_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


@dataclass
class Config:
    formats: list[str] = field(default_factory=lambda: list(FORMATS))
    out_dir: str = "export"  # relative to the run dir
    dataset_name: str = "limo"
    system_prompt: str | None = LIMO_SYSTEM_PROMPT  # LIMO's SFT data: the eval system prompt
    reasoning: Literal["think_tags", "drop"] = "think_tags"
    datacard: bool = True
    push_to_hub: str | None = None  # a hub repo id, e.g. "my-org/limo-demo"; None = do not upload
    hub_private: bool = True

    def __post_init__(self):
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ValueError(f"formats: unknown {bad}; choose from {list(FORMATS)}")
        if not self.dataset_name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"dataset_name must be letters, digits, - or _, got {self.dataset_name!r}")
        if self.push_to_hub is not None and self.push_to_hub.count("/") != 1:
            raise ValueError(f"push_to_hub must be 'owner/name', got {self.push_to_hub!r}")


def messages_of(row: dict, cfg: Config) -> list[dict[str, str]]:
    reasoning = row.get("reasoning") if cfg.reasoning == "think_tags" else None
    return chat_messages(row["problem"], assistant_text(reasoning, row["response"]), system=cfg.system_prompt)


def llamafactory_info(name: str, file_name: str) -> dict:
    return {
        name: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": dict(LLAMAFACTORY_TAGS),
        }
    }


def push_to_hub(path: Path, repo_id: str, private: bool) -> str:
    """Upload the saved HF dataset at `path` to the hub; clear LimoError when that cannot work."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise LimoError(f"export.push_to_hub={repo_id}: HF_HUB_OFFLINE is set; unset it or drop push_to_hub")
    from datasets import load_from_disk
    from huggingface_hub import get_token

    if not get_token():
        raise LimoError(f"export.push_to_hub={repo_id}: no Hugging Face token (set HF_TOKEN or `hf auth login`)")
    try:
        load_from_disk(str(path)).push_to_hub(repo_id, private=private)
    except Exception as e:  # network, auth, permission: one clear line instead of a traceback
        raise LimoError(f"export.push_to_hub={repo_id}: upload failed: {type(e).__name__}: {e}") from e
    return f"https://huggingface.co/datasets/{repo_id}"


def run(ds: Dataset, cfg: Config, ctx: StageContext) -> StageResult:
    rows = to_rows(ds)
    out = ctx.run_dir / cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for row in rows:
        rec = {"messages": messages_of(row, cfg)}
        rec.update({k: row.get(k) for k in META_COLUMNS})
        records.append(rec)
    written: dict[str, str] = {}
    if "messages" in cfg.formats:
        write_jsonl(out / "messages.jsonl", [{"id": r["id"], "messages": r["messages"]} for r in records])
        written["messages"] = str(out / "messages.jsonl")
    if "llamafactory" in cfg.formats:
        lf = out / "llamafactory"
        file_name = f"{cfg.dataset_name}.json"
        write_json(lf / file_name, [{"messages": r["messages"]} for r in records])
        write_json(lf / "dataset_info.json", llamafactory_info(cfg.dataset_name, file_name))
        written["llamafactory"] = str(lf)
    if "hf" in cfg.formats or cfg.push_to_hub:
        import shutil

        hf_dir = out / "hf"
        if hf_dir.exists():
            shutil.rmtree(hf_dir)
        if records:
            Dataset.from_list(records).save_to_disk(str(hf_dir))
        else:
            Dataset.from_dict({"messages": [], **{k: [] for k in META_COLUMNS}}).save_to_disk(str(hf_dir))
        written["hf"] = str(hf_dir)
    stats: dict = {"exported": len(records), "written": written}
    if cfg.push_to_hub:
        stats["hub_url"] = push_to_hub(out / "hf", cfg.push_to_hub, cfg.hub_private)
    if cfg.datacard:
        from limo.report.datacard import write_datacard

        card = write_datacard(ctx.run_dir, records, exclude_stage=ctx.stage_dir.name)
        stats["datacard"] = str(card)
    kept = [
        {**row, "messages": json.dumps(rec["messages"], ensure_ascii=False)}
        for row, rec in zip(rows, records, strict=True)
    ]
    return StageResult.from_rows(kept, [], stats)
