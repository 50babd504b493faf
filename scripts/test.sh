#!/usr/bin/env bash
# Run the whole test suite on a fresh machine (embedded PostgreSQL unless TEST_DATABASE_URL is set).
source "$(dirname "$0")/bootstrap.sh"
bootstrap test
# Browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  echo "Installing Chromium for the browser tests (apt-get)…" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Lint and types first: a finding fails the run, as a failing test does. mypy checks the
# paths [tool.mypy] names in pyproject.toml (app and tests); its cache is .mypy_cache/.
.venv/bin/ruff check --quiet app tests bench migrations
.venv/bin/mypy
# Three workers on two cores (pytest-xdist; each has its own database): much of the suite waits
# on PostgreSQL, Chromium, pip and subprocesses, and a third worker fills that time (the whole
# suite in 688 s against 1,039 s with two, same CPU, in one back-to-back pair on a machine loaded
# by other runs: measure again on a quiet one). Tests are handed out as workers free up;
# a later -n of the caller's wins (-n 0: one process, e.g. for --pdb).
exec .venv/bin/python -m pytest -n 3 --dist worksteal "$@"
