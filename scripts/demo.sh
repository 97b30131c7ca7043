#!/usr/bin/env bash
# Set everything up and show the main job as a newcomer would try it: the loopback mail stack
# up, a few realistic requests mailed to the offices, the daemon's pass, the tickets listed and
# the acknowledgement that landed in a requester's mailbox printed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/mailstack.sh up
exec .venv/bin/python scripts/demo.py
