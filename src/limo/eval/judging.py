"""Running the model judge over an eval's samples (the prompt and parse live in limo.eval.judge).

Rows the judge decides get `judged: true`, `judge_reply` (raw), `judge_verdict`, and keep the rule grader's verdict
as `rule_verdict`; their `verdict`/`correct` become the judge's. An unparsable reply is recorded
(`judge_verdict: "unparsable"`, `judged: false`) and the row keeps its rule verdict. A judge that cannot be reached
raises one clear error after the engine's retries, before any row is marked.
"""

from __future__ import annotations

from limo.engines.base import SamplingParams
from limo.errors import LimoError
from limo.eval.judge import judge_messages, needs_judge, parse_verdict


def apply_judge(samples: list[dict], spec, cfg) -> int:
    """Judge the rows that need it (see `needs_judge`); returns how many were judged."""
    from limo.engines import make_engine

    todo = [s for s in samples if needs_judge(str(s["answer"]), s["verdict"], spec.judge)]
    if not todo:
        return 0
    prompts = [
        judge_messages(s["problem"], str(s["answer"]), s["extracted"] or (s["response"] or "")[-2000:]) for s in todo
    ]
    sampling = SamplingParams(temperature=0.0, max_tokens=cfg.judge_max_tokens, seed=cfg.seed)
    engine = make_engine(cfg.judge_engine, cfg.cache)
    try:
        outputs = engine.generate(prompts, sampling, n=1)
    except LimoError as e:
        where = f" at {cfg.judge_engine.base_url}" if cfg.judge_engine.engine == "openai" else ""
        raise LimoError(
            f"judge {cfg.judge!r}{where} failed after {cfg.judge_engine.max_retries} tries ({e}); "
            "no rows were judged. Start the judge server or drop --judge"
        ) from None
    finally:
        engine.close()
    judged = 0
    for s, outs in zip(todo, outputs, strict=True):
        reply = outs[0].text
        verdict = parse_verdict(reply)
        s["judge_reply"] = reply
        s["judge_verdict"] = verdict or "unparsable"
        s["rule_verdict"] = s["verdict"]
        s["judged"] = verdict is not None
        if verdict is not None:
            s["verdict"] = verdict
            s["correct"] = verdict == "correct"
            judged += 1
    for s in samples:
        s.setdefault("judged", False)
    return judged
