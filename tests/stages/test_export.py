"""Stage 10 export: HF dataset round trip, messages JSONL, LLaMA-Factory data + dataset_info.json schema, hub path."""

import json
import sys
from pathlib import Path

import pytest
from datasets import load_from_disk

sys.path.insert(0, str(Path(__file__).parent))
from helpers_curation2 import as_dataset, context, math_train_rows  # noqa: E402

from limo.config import build  # noqa: E402
from limo.errors import LimoError  # noqa: E402
from limo.io import read_jsonl  # noqa: E402
from limo.records import LIMO_SYSTEM_PROMPT  # noqa: E402
from limo.stages import export  # noqa: E402


def selected_rows(shared_data: Path, n: int = 4) -> list[dict]:
    rows = []
    for i, r in enumerate(math_train_rows(shared_data, n)):
        rows.append(
            {
                **r,
                "candidate_id": f"{r['id']}#column:solution#0",
                "candidate_model": "column:solution",
                "response": r["solution"],
                "reasoning": "I think first." if i == 0 else None,
                "finish_reason": "stop",
                "completion_tokens": 100 + i,
                "quality_score": 0.5 + i / 10,
                "rule_score": 0.5 + i / 10,
                "judge_score": None,
                "quality_level": 2 + i % 3,
            }
        )
    return rows


def check_llamafactory(folder: Path) -> int:
    """LLaMA-Factory data/README.md, "OpenAI Format": a JSON list of {"messages": [{role, content}, ...]} where the
    first message may be the system prompt, then user/assistant alternate (user at odd positions), and a
    dataset_info.json entry with file_name, formatting "sharegpt", columns.messages and the role/content tags."""
    info = json.loads((folder / "dataset_info.json").read_text())
    assert len(info) == 1
    ((name, desc),) = info.items()
    assert set(desc) <= {"file_name", "formatting", "columns", "tags"}
    assert desc["formatting"] == "sharegpt"
    assert desc["columns"] == {"messages": "messages"}
    assert desc["tags"] == {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
        "system_tag": "system",
    }
    data = json.loads((folder / desc["file_name"]).read_text())
    assert isinstance(data, list)
    for entry in data:
        msgs = entry[desc["columns"]["messages"]]
        roles = [m[desc["tags"]["role_tag"]] for m in msgs]
        if roles and roles[0] == desc["tags"]["system_tag"]:
            roles = roles[1:]
        assert roles and len(roles) % 2 == 0
        assert roles[0::2] == [desc["tags"]["user_tag"]] * (len(roles) // 2)
        assert roles[1::2] == [desc["tags"]["assistant_tag"]] * (len(roles) // 2)
        assert all(isinstance(m[desc["tags"]["content_tag"]], str) and m["content"] for m in msgs)
    return len(data)


def test_export_round_trip(tmp_path, shared_data):
    rows = selected_rows(shared_data)
    cfg = export.Config(datacard=False)
    result = export.run(as_dataset(rows), cfg, context(tmp_path, "10_export"))
    out = tmp_path / "export"
    ds = load_from_disk(str(out / "hf"))
    assert len(ds) == 4 and ds["id"] == [r["id"] for r in rows]
    msgs = ds[1]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[0]["content"] == LIMO_SYSTEM_PROMPT
    assert msgs[1]["content"] == rows[1]["problem"] and msgs[2]["content"] == rows[1]["solution"]
    # reasoning kept apart is put back in front as <think>…</think>
    assert ds[0]["messages"][2]["content"] == f"<think>\nI think first.\n</think>\n\n{rows[0]['solution']}"
    jl = read_jsonl(out / "messages.jsonl")
    assert [set(r) for r in jl] == [{"id", "messages"}] * 4
    assert jl[1]["messages"] == msgs
    assert check_llamafactory(out / "llamafactory") == 4
    assert result.stats["exported"] == 4 and len(result.kept) == 4


def test_reasoning_drop_and_no_system_prompt(tmp_path, shared_data):
    rows = selected_rows(shared_data, 1)
    cfg = build(
        export.Config,
        {
            "reasoning": "drop",
            "system_prompt": None,
            "datacard": False,
            "formats": ["llamafactory"],
            "dataset_name": "demo_set",
        },
        "export",
    )
    export.run(as_dataset(rows), cfg, context(tmp_path, "10_export"))
    lf = tmp_path / "export" / "llamafactory"
    assert check_llamafactory(lf) == 1
    data = json.loads((lf / "demo_set.json").read_text())
    assert [m["role"] for m in data[0]["messages"]] == ["user", "assistant"]
    assert data[0]["messages"][1]["content"] == rows[0]["solution"]
    assert not (tmp_path / "export" / "hf").exists()


def test_push_to_hub_offline_is_a_clear_error(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = export.Config(datacard=False, push_to_hub="someone/limo-test")
    with pytest.raises(LimoError, match="HF_HUB_OFFLINE"):
        export.run(as_dataset(selected_rows(shared_data, 1)), cfg, context(tmp_path, "10_export"))


def test_push_to_hub_without_token_is_a_clear_error(tmp_path, shared_data, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token
    ds = as_dataset(selected_rows(shared_data, 1))
    export.run(ds, export.Config(datacard=False), context(tmp_path, "10_export"))
    with pytest.raises(LimoError, match="token"):
        export.push_to_hub(tmp_path / "export" / "hf", "someone/limo-test", private=True)


def test_config_validation():
    with pytest.raises(LimoError, match="formats"):
        build(export.Config, {"formats": ["csv"]}, "export")
    with pytest.raises(LimoError, match="owner/name"):
        build(export.Config, {"push_to_hub": "no-slash"}, "export")
