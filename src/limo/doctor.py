"""`limo doctor`: what this install can run - versions, CUDA, driver, attention backend, optional GPU libraries.

Prints one table and, with `--json PATH`, writes the same facts as JSON. Nothing here needs a GPU or the network:
missing pieces are reported, never raised. The versions the project was tested with and the known pins (vllm
pins transformers below 5.20; torch 2.13's CUDA wheels need an R580+ driver) are in README.md "Installs".

    limo doctor
    limo doctor --json doctor.json
"""

import importlib
import importlib.metadata
import platform
import shutil
import subprocess
from typing import Any

CORE = ["torch", "transformers", "trl", "accelerate", "peft", "datasets"]
OPTIONAL = ["vllm", "deepspeed", "flash_attn", "ray", "bitsandbytes", "llama_cpp"]
DISTRIBUTIONS = {"flash_attn": "flash-attn", "llama_cpp": "llama-cpp-python"}


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return None


def import_status(name: str) -> dict[str, Any]:
    """Installed version and whether it really imports (a CUDA-only wheel can be installed yet fail to import)."""
    version = package_version(name)
    if version is None:
        return {"installed": False, "imports": False, "version": None, "error": "not installed"}
    try:
        importlib.import_module(name)
    except Exception as e:  # any failure to import is a finding, not a crash
        first = str(e).splitlines()[0] if str(e) else ""
        return {"installed": True, "imports": False, "version": version, "error": f"{type(e).__name__}: {first}"}
    return {"installed": True, "imports": True, "version": version, "error": None}


def nvidia_driver() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None when there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [x.strip() for x in out.stdout.splitlines() if x.strip()]
    return lines[0] if out.returncode == 0 and lines else None


def cuda_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "torch_cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": [],
        "bf16": False,
        "driver": nvidia_driver(),
    }
    if torch.cuda.is_available():
        facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        facts["bf16"] = torch.cuda.is_bf16_supported()
    return facts


def collect() -> dict[str, Any]:
    from limo.train.launch import resolve_attention

    attention, why = resolve_attention("auto")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "limo": package_version("limo"),
        "packages": {name: package_version(name) for name in CORE},
        "cuda": cuda_facts(),
        "attention": {"auto_picks": attention, "reason": why},
        "optional": {name: import_status(name) for name in OPTIONAL},
    }


def show(facts: dict[str, Any]) -> None:
    from rich.table import Table

    from limo.console import console

    table = Table(title="limo doctor")
    table.add_column("item")
    table.add_column("value")
    table.add_row("python", facts["python"])
    table.add_row("platform", facts["platform"])
    table.add_row("limo", str(facts["limo"]))
    for name, version in facts["packages"].items():
        table.add_row(name, version or "[red]not installed[/red]")
    cuda = facts["cuda"]
    table.add_row("torch CUDA build", str(cuda["torch_cuda_build"] or "none (CPU build)"))
    table.add_row("CUDA available", "yes" if cuda["cuda_available"] else "no")
    table.add_row("NVIDIA driver", cuda["driver"] or "none found (no nvidia-smi)")
    table.add_row("GPUs", ", ".join(cuda["gpus"]) or "none")
    table.add_row("attention (auto)", f"{facts['attention']['auto_picks']} - {facts['attention']['reason']}")
    for name, st in facts["optional"].items():
        if st["imports"]:
            value = f"[green]imports[/green] {st['version']}"
        elif st["installed"]:
            value = f"[red]installed {st['version']} but does not import[/red]: {st['error']}"
        else:
            value = "not installed"
        table.add_row(name, value)
    console.print(table)


def run_doctor(json_path: str | None = None) -> dict[str, Any]:
    facts = collect()
    show(facts)
    if json_path:
        from limo.io import write_json

        write_json(json_path, facts)
    return facts
