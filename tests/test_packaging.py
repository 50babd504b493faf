"""Runtime imports are runtime dependencies: the project installed WITHOUT extras, into a fresh
virtualenv (no system site-packages), imports its entry points.

Slow (a minute or more: pip fetches every dependency unless its cache has them). It exists
because `httpx` was once only in the `test` extra: the suite passed while `scripts/run.sh` on
a fresh clone died with ModuleNotFoundError.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# What the install needs of the checkout; never the virtualenv, database directories or caches.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".pgdata", ".pytest-pg", ".pytest_cache", "__pycache__",
                                    "*.egg-info", "build", "node_modules", "bench", "docs", "samples", "tests")
ENTRY_POINTS = ("app.main", "app.cli", "app.webhooks.worker")


def run(command: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    # No PYTHONPATH or VIRTUAL_ENV from this test run: only the fresh virtualenv may provide modules.
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_project_installed_without_extras_imports_its_entry_points(tmp_path):
    # A copy, so pip's build files (egg-info, build/) never land in the shared checkout.
    source = tmp_path / "riskdesk"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    venv = tmp_path / "venv"
    # Without a pip of its own: this run's pip installs into it (--python), which spares
    # seeding one; --no-compile leaves bytecode to the imports below.
    created = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, timeout=300)
    assert created.returncode == 0, created.stderr
    python = str(venv / "bin" / "python")
    # Editable, as scripts/bootstrap.sh installs it: the app finds static/ and templates/ in its checkout.
    installed = run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile",
                     "-e", str(source)], cwd=tmp_path, timeout=1800)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    probe = "import sys\nfor name in sys.argv[1:]:\n    __import__(name)\nprint('imported', *sys.argv[1:])"
    imported = run([python, "-c", probe, *ENTRY_POINTS], cwd=tmp_path, timeout=300)

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["imported", *ENTRY_POINTS]
    # The packages really came from the fresh virtualenv, not from the one running this test.
    origin = run([python, "-c", "import httpx, fastapi; print(httpx.__file__); print(fastapi.__file__)"],
                 cwd=tmp_path, timeout=120)
    assert origin.returncode == 0, origin.stderr
    assert all(line.startswith(str(venv)) for line in origin.stdout.split()), origin.stdout
    usage = run([python, "-m", "app", "--help"], cwd=tmp_path, timeout=120)
    assert usage.returncode == 0, usage.stderr
    assert "worker" in usage.stdout
