#!/usr/bin/env bash
# Installs Debian's chromium + chromium-driver (used headless by the review page's end-to-end test), if missing.
# Without root (or sudo) it cannot: on a developer machine it says so and the browser test is skipped; in CI
# (CI=true) it fails, because the browser test must never be skipped there (tests/review/conftest.py fails it too).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
if { [ "$(id -u)" != "0" ] && [ -z "$SUDO" ]; } || ! command -v apt-get >/dev/null 2>&1; then
  case "${CI:-}" in
    ""|0|false|False|FALSE|no)
      echo "chromium not found and cannot apt-get it here (needs root or sudo); the browser test will be skipped" >&2
      exit 0 ;;
    *)
      echo "CI: chromium not found and cannot apt-get it here (needs root or sudo + apt-get); the browser test" \
        "(tests/review/test_review_e2e.py) must run in CI" >&2
      exit 1 ;;
  esac
fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
