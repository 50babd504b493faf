#!/usr/bin/env bash
# Run the whole test suite on a fresh machine (embedded PostgreSQL unless TEST_DATABASE_URL is set).
source "$(dirname "$0")/bootstrap.sh" test
exec .venv/bin/python -m pytest "$@"
