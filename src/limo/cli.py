"""The `limo` command line: one typer app. Each command is a thin wrapper over a module.

    limo generate | grade | eval | compare | curate | train | run | experiment | review
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from limo.errors import LimoError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="LIMO: less is more for reasoning."
)


@app.callback()
def _root() -> None:
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
    cache: Annotated[Path | None, typer.Option(help="generation cache (SQLite)")] = None,
):
    """Generate completions for a JSONL of prompts, through the persistent cache."""
    from limo.engines import EngineConfig, SamplingParams
    from limo.generate import run_generate

    cfg = EngineConfig(model=model, engine=engine, batch_size=batch_size, base_url=base_url, concurrency=concurrency)
    sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, stop=tuple(stop or ()))
    run_generate(cfg, input, out, sampling, n, cache)


# --- more commands are registered below, one block per module -------------------------------------------------


def main() -> None:
    """Entry point: LimoError becomes one red line and exit code 2, not a traceback."""
    from limo.console import console

    try:
        app(standalone_mode=False)
    except LimoError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(2)
    except Exception as e:  # usage errors from click (vendored by typer) know how to show themselves
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
