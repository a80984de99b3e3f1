"""`limo doctor` runs here (CPU, no GPU libraries) and reports what it finds."""

import json
import subprocess
import sys


def test_limo_doctor_runs_and_reports(tmp_path):
    out = tmp_path / "doctor.json"
    res = subprocess.run(
        [sys.executable, "-m", "limo.cli", "doctor", "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    facts = json.loads(out.read_text())
    assert facts["packages"]["torch"].startswith("2.13.0")
    assert facts["cuda"]["cuda_available"] is False and facts["cuda"]["torch_cuda_build"] is None
    assert facts["attention"]["auto_picks"] == "sdpa"
    assert set(facts["optional"]) >= {"vllm", "deepspeed", "flash_attn"}
    assert facts["optional"]["flash_attn"]["imports"] is False
    shown = res.stdout + res.stderr
    assert "attention (auto)" in shown and "flash_attn" in shown
