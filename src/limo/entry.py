"""The `limo` entry point: flag rules and output checks for every command, and one line per user error.

A user error (limo.errors.LimoError, a bad flag, an unreadable or unwritable path) prints `error: ...` on one line
and exits with code 2; `--debug` (anywhere on the command line) or LIMO_DEBUG=1 prints its traceback first.
Anything else is our bug and shows its traceback (exit 1). Flags are checked by parameter name (FLAG_RULES) and
outputs by (command, option) (OUTPUT_CHECKS) before a command starts, so a bad value fails before a model loads.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from limo.errors import LimoError


def run_app(app: typer.Typer, argv: list[str]) -> None:
    """Run the typer `app` on `argv`. A user error (LimoError, a bad flag, an unreadable or unwritable path) is one
    red line and exit code 2; anything else is our bug: a traceback and exit 1. `--debug` (anywhere) or
    LIMO_DEBUG=1 shows the traceback of user errors too."""
    args = list(argv)
    debug = "--debug" in args or os.environ.get("LIMO_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        command = typer.main.get_command(app)
        check_flags(command)
        command.main(args=args, prog_name="limo", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except LimoError as e:
        _user_error(str(e), debug)
    except OSError as e:  # unreadable / unwritable paths the command did not check itself
        if e.filename is None:
            raise
        _user_error(f"{e.filename}: {e.strerror or e}", debug)
    except Exception as e:
        if not _is_usage_error(e):
            raise
        if type(e).__name__ == "NoArgsIsHelpError":  # `limo` or `limo cache` alone: the help text
            e.show()
            sys.exit(e.exit_code)
        ctx = getattr(e, "ctx", None)
        command_path = ctx.command_path if ctx is not None else "limo"
        _user_error(f"{e.format_message()} (see `{command_path} --help`)", debug)


def _is_usage_error(e: Exception) -> bool:
    """click's (or typer's vendored click's) exceptions for bad flags and arguments: they name the flag."""
    return any(cls.__name__ == "ClickException" for cls in type(e).__mro__)


def _at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be >= {low}, got {v}"


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0, got {v}"


def _engine_name(v: str) -> str | None:
    from limo.engines.base import ENGINES

    return None if v in ENGINES else f"unknown engine {v!r}; use one of {', '.join(ENGINES)}"


# Flag rules by parameter name, for every command that has the flag (configs validate again in __post_init__;
# checking here names the flag and fails before any model loads).
FLAG_RULES: dict[str, Callable[[Any], str | None]] = {
    "n": _at_least(1),
    "max_tokens": _at_least(1),
    "limit": _at_least(1),
    "temperature": _at_least(0),
    "top_p": lambda v: None if 0 < v <= 1 else f"must be in (0, 1], got {v}",
    "batch_size": _at_least(1),
    "concurrency": _at_least(1),
    "replicas": _at_least(1),
    "max_retries": _at_least(0),
    "workers": _at_least(1),
    "grade_workers": _at_least(1),
    "pool_rows": _at_least(1),
    "timeout": _positive,
    "grade_timeout": _positive,
    "port": lambda v: None if 0 <= v <= 65535 else f"must be a port number in 0..65535, got {v}",
    "engine": _engine_name,
    "judge_engine": _engine_name,
    "inner_engine": _engine_name,
}


def _output_file(path: Path) -> None:
    """An output file: not a directory, in a writable place; an existing one is named before it is replaced."""
    from limo.console import console
    from limo.io import check_output_file

    if check_output_file(path).exists():
        console.print(f"[yellow]note:[/yellow] {path} exists and will be replaced", soft_wrap=True, highlight=False)


def _merge_output(path: Path) -> None:
    """`limo review merge -o`: an existing decisions file is folded in, never replaced."""
    from limo.io import check_output_file

    check_output_file(path)


def _output_dir(path: Path) -> None:
    """A run directory: resumed when it exists (curate, train, run, experiment)."""
    from limo.io import check_output_dir

    check_output_dir(path)


def _results_dir(path: Path) -> None:
    """eval / compare write their results afresh: an earlier run's results there are named before they are replaced."""
    from limo.console import console
    from limo.io import check_output_dir

    if check_output_dir(path).is_dir() and any(path.iterdir()):
        note = f"{path} has files from an earlier run; its results are replaced"
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True, highlight=False)


# Outputs are checked before any work starts: (command, option) -> check (raises a one-line InputError).
OUTPUT_CHECKS: dict[tuple[str, str], Callable[[Path], None]] = {
    ("generate", "out"): _output_file,
    ("grade", "out"): _output_file,
    ("doctor", "json_out"): _output_file,
    ("review", "out"): _merge_output,
    **{(name, "out"): _output_dir for name in ("curate", "train", "run", "experiment")},
    ("eval", "out"): _results_dir,
    ("compare", "out"): _results_dir,
}


def check_flags(command: Any, name: str = "") -> None:
    """Attach FLAG_RULES and OUTPUT_CHECKS to every matching option of the click `command` and its subcommands: a
    bad value is a one-line error naming the flag or path (exit 2)."""
    for sub_name, sub in getattr(command, "commands", {}).items():
        check_flags(sub, sub_name)
    for param in command.params:
        check = FLAG_RULES.get(param.name or "") or OUTPUT_CHECKS.get((name, param.name or ""))
        if check is not None and param.param_type_name == "option":
            param.callback = _checked(check, param.callback)


def _checked(rule: Callable[[Any], str | None], inner: Callable | None) -> Callable:
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        problem = None if value is None else rule(value)
        if problem:
            raise typer.BadParameter(problem, ctx=ctx, param=param)
        return inner(ctx, param, value) if inner else value

    return callback


def _user_error(message: str, debug: bool) -> None:
    """Print a user error as exactly one line (with the traceback first under --debug) and exit 2."""
    from rich.markup import escape

    from limo.console import console

    if debug:
        import traceback

        traceback.print_exc()
    console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", soft_wrap=True, highlight=False)
    sys.exit(2)


def recipe_section(ctx: Any, recipe: Path | None, overrides: list[str] | None, section: str, allowed: tuple) -> Any:
    """A command's settings from a recipe's section (`limo eval --recipe R.yaml --set eval.n=4`). Flags that would
    set the same things are refused rather than silently ignored; `--cache` applies on top."""
    import dataclasses

    from limo.recipes import load_recipe

    if recipe is None:
        raise LimoError("--set needs --recipe (without a recipe, give the settings as flags)")
    given = sorted(
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name not in (*allowed, "recipe", "set_") and ctx.get_parameter_source(name).name == "COMMANDLINE"
    )
    if given:
        raise LimoError(
            f"{recipe}: with --recipe the settings come from its '{section}:' section; change them with "
            f"--set {section}.KEY=VALUE instead of {', '.join(given)}"
        )
    loaded = load_recipe(recipe, overrides)
    loaded.need(section, command=ctx.info_name or section)
    settings = getattr(loaded, section)
    cache = ctx.params.get("cache")
    return dataclasses.replace(settings, cache=str(cache)) if cache else settings
