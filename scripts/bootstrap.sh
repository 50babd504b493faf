# Sourced by scripts/run.sh and scripts/test.sh: a project-local virtualenv with the
# project installed (re-installed only when pyproject.toml changes).
#
# Sourcing defines `bootstrap [EXTRA]`; the caller names the pip extra it needs (none for
# run.sh, "test" for test.sh). It is never read from the caller's own arguments, so
# `scripts/run.sh --port 8300` passes --port to the app, not to pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bootstrap() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  local stamp=".venv/.riskdesk-installed${extras:+-$extras}"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
  fi
  # pgserver looks for a private runtime directory; servers often have none.
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
}
