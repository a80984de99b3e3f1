"""The browser test is never skipped in CI without failing loudly: without chromium it fails when CI is set (the
fixture and scripts/install-browser.sh), and is skipped with its reason elsewhere."""

import os
import shutil
import subprocess
import sys

import pytest

from limo.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "install-browser.sh"


def _run_e2e_without_chromium(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LIMO_CHROMIUM"] = str(tmp_path / "no-chromium")
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rsfE", "tests/review/test_review_e2e.py"]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_browser_test_fails_in_ci_without_chromium(tmp_path):
    proc = _run_e2e_without_chromium(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "CI: the browser test must run" in proc.stdout and "1 error" in proc.stdout  # failed in its fixture


@pytest.mark.parametrize("ci", [None, "false"])
def test_browser_test_is_skipped_with_its_reason_outside_ci(tmp_path, ci):
    proc = _run_e2e_without_chromium(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "Debian chromium is not installed" in proc.stdout and "skipped" in proc.stdout


def _script_without_chromium_or_apt(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    """install-browser.sh with a PATH that has neither chromium nor apt-get (only `id`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").symlink_to(shutil.which("id"))
    env = {"PATH": str(bin_dir)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_install_script_fails_in_ci_when_it_cannot_install(tmp_path):
    proc = _script_without_chromium_or_apt(tmp_path, "true")
    assert proc.returncode == 1 and "must run in CI" in proc.stderr


def test_install_script_only_warns_outside_ci(tmp_path):
    proc = _script_without_chromium_or_apt(tmp_path, None)
    assert proc.returncode == 0 and "will be skipped" in proc.stderr
