#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine: the Python virtualenv with
# the project and its dev tools, and the Debian packages of the loopback mail stack.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
# The versions installed are those of constraints.txt (what the tests passed with), within the
# ranges of pyproject.toml; scripts/lock.sh says how to move to newer ones and rewrites the file.
if ! .venv/bin/python -c "import mailer.operator.cli, prometheus_client, imapclient, aiosmtplib, sqlmodel, alembic, structlog, babel, holidays, authres, tnefparse, compressed_rtf, striprtf, pytest, pytest_timeout" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ] || [ constraints.txt -nt .venv/.installed ]; then
    echo "setup: installing the project into .venv" >&2
    PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt)
    "${PIP[@]}" --upgrade pip >&2
    "${PIP[@]}" -e ".[dev]" >&2
    touch .venv/.installed
fi
bash scripts/mailstack.sh install >&2
# systemd-analyze: tests/test_exporter.py verifies the units in scripts/systemd/.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "setup: installing systemd (systemd-analyze checks the unit files)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y --no-install-recommends systemd >&2 \
        || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends systemd >&2; }
fi
# Headless Chromium: tests open the monthly report's HTML page in it (tests/test_monthly_browser.py).
if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (headless browser for the report test)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y --no-install-recommends chromium >&2 \
        || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends chromium >&2; }
fi
