#!/usr/bin/env bash
# Start Riskdesk on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set).
# Arguments go to `python -m app run`: --host, --port, --no-worker.
source "$(dirname "$0")/bootstrap.sh"
bootstrap
exec .venv/bin/python -m app run "$@"
