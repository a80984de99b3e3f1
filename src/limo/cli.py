"""The `limo` command line: one typer app. Each command is a thin wrapper over a module.

limo generate | grade | eval | compare | curate | train | run | experiment | review
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="LIMO: less is more for reasoning.",
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of errors (also LIMO_DEBUG=1)")] = False,
) -> None:
    """LIMO: curate a small, hard, high-quality long-CoT set; fine-tune on it; evaluate."""


@app.command()
def generate(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL with 'prompt' or 'messages' per line")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output JSONL")],
    model: Annotated[str, typer.Option(help="alias, hub id, directory or .gguf")] = "smollm2-135m",
    engine: Annotated[str, typer.Option(help="hf | vllm | openai | ray")] = "hf",
    n: Annotated[int, typer.Option(help="samples per prompt")] = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_tokens: int = 512,
    seed: int = 0,
    stop: Annotated[list[str] | None, typer.Option(help="stop string (repeatable)")] = None,
    batch_size: int = 8,
    base_url: Annotated[str, typer.Option(help="openai engine: server URL")] = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(help="openai engine: parallel requests")] = 8,
    endpoint: Annotated[str, typer.Option(help="openai engine: chat | completions")] = "chat",
    max_retries: Annotated[int, typer.Option(help="openai engine: retries per request")] = 6,
    timeout: Annotated[float, typer.Option(help="openai engine: seconds per attempt, whole answer")] = 600.0,
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
    replicas: Annotated[int, typer.Option(help="ray engine: number of replicas")] = 1,
    inner_engine: Annotated[str, typer.Option(help="ray engine: engine each replica runs (hf | vllm)")] = "hf",
    ray_address: Annotated[str | None, typer.Option(help="ray engine: cluster address ('auto' = ray start)")] = None,
):
    """Generate completions for a JSONL of prompts, through the persistent cache."""
    from limo.engines import EngineConfig, SamplingParams
    from limo.generate import run_generate

    ray = {"inner": {"engine": inner_engine}, "replicas": replicas, "ray_address": ray_address}
    cfg = EngineConfig(
        model=model, engine=engine, batch_size=batch_size, base_url=base_url, concurrency=concurrency,
        endpoint=endpoint, max_retries=max_retries, timeout_s=timeout, **(ray if engine == "ray" else {}),
    )  # fmt: skip
    sampling = SamplingParams(
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, stop=tuple(stop or ())
    )
    run_generate(cfg, input, out, sampling, n, cache)


# --- more commands are registered below, one block per module -------------------------------------------------

cache_app = typer.Typer(no_args_is_help=True, help="Check or repair a generation cache (SQLite).")
app.add_typer(cache_app, name="cache")


@cache_app.command("check")
def cache_check(path: Annotated[Path | None, typer.Argument(help="cache file (default: the shared one)")] = None):
    """Run SQLite's integrity check and count the readable rows; exit 2 when the file is damaged."""
    from limo.engines.cache_cli import run_check

    run_check(path)


@cache_app.command("repair")
def cache_repair(path: Annotated[Path | None, typer.Argument(help="cache file (default: the shared one)")] = None):
    """Copy every readable row into a fresh file, keep the damaged one beside it as PATH.damaged-<time>."""
    from limo.engines.cache_cli import run_repair

    run_repair(path)


# --plan (limo.plan): curate, run and experiment print and write OUT/plan.json instead of running
PlanFlag = Annotated[
    bool, typer.Option("--plan", help="print + write OUT/plan.json (stages, models, bounds, GPU hours); run nothing")
]
PoolRows = Annotated[
    int | None, typer.Option("--pool-rows", help="--plan: rows assumed for a pool source of unknown size (hub)")
]
Throughput = Annotated[
    Path | None, typer.Option("--throughput", help="--plan: YAML {size class: [low, high]} tokens/s per GPU")
]


@app.command()
def curate(
    recipe: Annotated[Path, typer.Argument(help="curation recipe YAML")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory (resumed if it exists)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="recipe override a.b=value (repeatable)")] = None,
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
    plan: PlanFlag = False,
    pool_rows: PoolRows = None,
    throughput: Throughput = None,
):
    """Curate a training set: pool, dedup, decontaminate, difficulty, diversity, ... (resumable stages)."""
    if plan:
        from limo.plan import plan_command

        plan_command("curate", recipe, out, list(set_ or []), pool_rows, throughput)
        return
    from limo.curate import run_curate
    from limo.recipes import load_recipe

    loaded = load_recipe(recipe, list(set_ or []))
    loaded.need("curate", command="curate")
    run_curate(loaded.curate, out, cache)


@app.command()
def review(
    args: Annotated[list[str], typer.Argument(help="RUN (a curation run dir), or: merge A.jsonl B.jsonl ... -o OUT")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 = any free port)")] = 8765,
    reviewer: Annotated[str | None, typer.Option(help="your name, stored with each decision (default: $USER)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="merge: the merged decisions file")] = None,
):
    """Review candidates in a local web page (127.0.0.1), or merge reviewers' decision files.

    limo review runs/demo [--port 8765] [--reviewer ann]      then open the printed URL; press ? for shortcuts
    limo review merge ann.jsonl bob.jsonl -o runs/demo/review/decisions.jsonl
    """
    from limo.review.cli import review_command

    review_command(args, port=port, reviewer=reviewer, out=out)


@app.command()
def train(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML with a `train:` section")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output dir: final model, checkpoints/, plans, logs")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a recipe key: key=value (repeatable)")
    ] = None,
    data: Annotated[str | None, typer.Option(help="training data (overrides the recipe's `data`)")] = None,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="print and save the memory plan, then stop")] = False,
):
    """Supervised fine-tuning (TRL) on chat messages; loss on assistant tokens only. Launch with accelerate for
    several processes: `accelerate launch --config_file recipes/accelerate/zero3.yaml -m limo.cli train ...`."""
    from limo.recipes import load_recipe
    from limo.train.sft import run_train

    overrides = list(set_ or [])  # `--set key=value` means train.key here
    if data:
        overrides.append(f"train.data={data}")
    loaded = load_recipe(recipe, overrides, default_section="train")
    loaded.need("train", command="train")
    run_train(loaded.train, out, plan_only=plan_only)


@app.command()
def doctor(
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the facts as JSON here")] = None,
):
    """Versions, CUDA, driver, the attention backend `auto` picks, and whether vllm, DeepSpeed, flash-attn import."""
    from limo.doctor import run_doctor

    run_doctor(str(json_out) if json_out else None)


@app.command()
def grade(
    input: Annotated[Path, typer.Argument(help="JSONL (or Parquet) with 'response' and 'answer' per row")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="output JSONL (rows + correct/verdict/extracted)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="hard wall-clock seconds per item")] = 5.0,
    workers: Annotated[int | None, typer.Option(help="grading processes (default: CPU count, at most 8)")] = None,
    response_field: str = "response",
    answer_field: str = "answer",
    rule: Annotated[str, typer.Option(help="boxed (the authors': last box, no box = wrong) | extended")] = "extended",
):
    """Grade responses against gold answers (math-verify + exact checks, worker processes, hard timeouts)."""
    from limo.grading import grade_jsonl

    if rule not in ("boxed", "extended"):
        raise typer.BadParameter(f"unknown rule {rule!r}; use boxed or extended", param_hint="--rule")
    grade_jsonl(
        input,
        out,
        timeout_s=timeout,
        workers=workers,
        response_field=response_field,
        answer_field=answer_field,
        rule=rule,  # type: ignore[arg-type]
    )


@app.command("eval")
def eval_(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="output dir: results.json, samples.jsonl, results.md")],
    recipe: Annotated[Path | None, typer.Option(help="take every setting from this recipe's eval: section")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="with --recipe: eval.KEY=VALUE (repeatable)")] = None,
    model: Annotated[str, typer.Option(help="alias, hub id, directory or .gguf")] = "smollm2-135m",
    engine: Annotated[str, typer.Option(help="hf | vllm | openai | ray")] = "hf",
    benchmarks: Annotated[str, typer.Option(help="comma-separated names or .jsonl/.parquet paths")] = "math500",
    benchmark: Annotated[list[str] | None, typer.Option(help="a benchmark name or file (repeatable)")] = None,
    protocol: Annotated[str, typer.Option(help="greedy | limo-v1 | limo-v3 (per-benchmark settings)")] = "greedy",
    n: Annotated[int | None, typer.Option(help="samples per problem, every benchmark (default: protocol)")] = None,
    temperature: Annotated[float | None, typer.Option(help="every benchmark (default: protocol)")] = None,
    top_p: Annotated[float | None, typer.Option(help="every benchmark (default: protocol)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="caps every benchmark's max tokens (protocol: 32768)")] = None,
    grading: Annotated[str | None, typer.Option(help="boxed | extended (default: protocol)")] = None,
    judge: Annotated[str | None, typer.Option(help="judge model for text golds / undecided items")] = None,
    judge_engine: Annotated[str, typer.Option(help="judge: hf | vllm | openai | ray")] = "openai",
    judge_base_url: Annotated[str, typer.Option(help="judge: openai engine URL")] = "http://127.0.0.1:8000/v1",
    limit: Annotated[int | None, typer.Option(help="first N problems of each benchmark")] = None,
    seed: int = 0,
    batch_size: int = 8,
    base_url: Annotated[str, typer.Option(help="openai engine: server URL")] = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(help="openai engine: parallel requests")] = 8,
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
    grade_timeout: Annotated[float, typer.Option(help="hard seconds per graded item")] = 5.0,
    grade_workers: Annotated[int | None, typer.Option(help="grading processes")] = None,
):
    """Evaluate a model on benchmarks: generate (cached), grade, write results.json / samples.jsonl / results.md."""
    from limo.engines import EngineConfig
    from limo.eval.run import EvalConfig, run_eval

    if recipe is not None or set_:
        from limo.entry import recipe_section

        run_eval(recipe_section(ctx, recipe, set_, "eval", allowed=("out", "cache")), out)
        return
    names = [b.strip() for b in benchmarks.split(",") if b.strip()] if not benchmark else []
    names += list(benchmark or [])
    cfg = EvalConfig(
        model=model,
        engine=EngineConfig(
            model=model, engine=engine, batch_size=batch_size, base_url=base_url, concurrency=concurrency
        ),
        benchmarks=names,
        protocol=protocol,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        grading=grading,
        limit=limit,
        seed=seed,
        cache=str(cache) if cache else None,
        grade_timeout_s=grade_timeout,
        grade_workers=grade_workers,
        judge=judge,
        judge_engine=EngineConfig(model=judge, engine=judge_engine, base_url=judge_base_url) if judge else None,
    )
    run_eval(cfg, out)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="eval output dirs; the first is the baseline")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="output dir (default: <first run>/../compare)")
    ] = None,
    seed: int = 0,
):
    """Compare eval runs: side-by-side scores, paired differences with a permutation test, a bar chart."""
    from limo.eval.compare import compare_runs

    compare_runs(list(runs), out, seed=seed)


@app.command("run")
def run_(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML with curation keys plus train: and eval:")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory (resumed if it exists)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="recipe override a.b=value (repeatable)")] = None,
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
    skip_base_eval: Annotated[bool, typer.Option(help="evaluate only the fine-tuned model")] = False,
    plan: PlanFlag = False,
    pool_rows: PoolRows = None,
    throughput: Throughput = None,
):
    """The whole loop: curate -> train -> eval (base and fine-tuned) -> RUN/report.md. Every step resumes."""
    if plan:
        from limo.plan import plan_command

        plan_command("run", recipe, out, list(set_ or []), pool_rows, throughput, skip_base_eval=skip_base_eval)
        return
    from limo.pipeline import run_pipeline
    from limo.recipes import load_recipe

    run_pipeline(load_recipe(recipe, list(set_ or [])), out, cache, skip_base_eval=skip_base_eval)


@app.command()
def experiment(
    grid: Annotated[Path, typer.Argument(help="grid YAML: base recipe, dataset variants, base models")],
    out: Annotated[Path, typer.Option("--out", "-o", help="experiment directory (resumed if it exists)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="grid override a.b=value (repeatable)")] = None,
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
    plan: PlanFlag = False,
    pool_rows: PoolRows = None,
    throughput: Throughput = None,
):
    """The paper's ablations: train + evaluate every dataset variant x base model; one table and plots."""
    if plan:
        from limo.plan import plan_command

        plan_command("experiment", grid, out, list(set_ or []), pool_rows, throughput)
        return
    from limo.experiment import run_experiment

    run_experiment(grid, out, list(set_ or []), cache)


def main(argv: list[str] | None = None) -> None:
    """Entry point (the `limo` script): limo.entry runs the app with its flag rules and one-line user errors."""
    from limo.entry import run_app

    run_app(app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
