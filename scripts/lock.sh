#!/usr/bin/env bash
# Write constraints.txt: the exact version of every package in .venv (pip freeze), which
# scripts/setup.sh then installs everywhere (`pip install -c constraints.txt`). The ranges the
# project accepts stay in pyproject.toml. To take newer releases on purpose:
#   .venv/bin/pip install --upgrade --upgrade-strategy eager -e ".[dev]"
#   scripts/test.sh && scripts/lock.sh      # lock only what the whole suite passed with
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# The versions the test suite passed with: pip freeze of .venv, written by scripts/lock.sh"
    echo "# (see there to refresh). scripts/setup.sh installs with -c constraints.txt; the ranges"
    echo "# the project accepts are in pyproject.toml."
    .venv/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check
} > constraints.txt
