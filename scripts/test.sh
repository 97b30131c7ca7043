#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, and end-to-end tests against the real
# Dovecot + Postfix on loopback, and the storage tests on a scratch PostgreSQL (all started
# here if they are not running).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k restart`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/mailstack.sh up
PST_TEST_POSTGRES_URL=$(bash scripts/postgres.sh up)
export PST_TEST_POSTGRES_URL
.venv/bin/ruff check mailer storage tests bench scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
