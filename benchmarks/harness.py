"""What every benchmark shares: timing commands in fresh processes, anchors installed into
git-ignored folders, and one machine-readable results file.

    from harness import record, time_command, paired, ensure_llm, ensure_ccusage, sqlite3_cli

Results: bench-out/results.json, a JSON object {"runs": {name: result}} where each result is
    {"name", "value", "unit", "anchor", "anchor_value", "ratio", "target", "met", "note",
     "measured_at", "machine"}
`ratio` is value / anchor_value (None without an anchor); `target` is a short text such as
"ratio <= 1.3" or "value <= 0.35" and `met` is whether this run meets it (None: no target, or
the anchor was skipped and the target is a ratio). Each benchmark calls record() for each figure;
a later run of the same name replaces the earlier one. scripts/bench_readme.py turns the file into
the README's performance section.

Anchors are the tools a user would pick instead, run in the same benchmark on the same data:
    sqlite3 CLI      Debian's sqlite3 (apt-get install -y sqlite3)
    llm              simonw's llm, pip-installed into bench-out/venv-llm
    ccusage 20.0.24  from npm into bench-out/npm (20.0.26 ships no linux binary)
An anchor that cannot be installed is skipped with a message saying why, never faked.

The machine is shared and noisy: `paired` alternates the two commands run by run and reports
medians, so both sides see the same load.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"
RESULTS = Path(os.environ.get("TIER_BENCH_RESULTS") or OUT / "results.json")  # override: a scratch file
CCUSAGE_VERSION = "20.0.24"


# -- results ---------------------------------------------------------------------------------------
def _machine() -> str:
    import sqlite3

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
            f"sqlite {sqlite3.sqlite_version}")


def _met(target: str | None, value: float, ratio: float | None) -> bool | None:
    if not target:
        return None
    subject, op, bound = target.split()
    x = ratio if subject == "ratio" else value
    if x is None:
        return None
    limit = float(bound)
    return {"<=": x <= limit, ">=": x >= limit, "<": x < limit, ">": x > limit}[op]


def record(name: str, value: float, unit: str, *, anchor: str | None = None, anchor_value: float | None = None,
           target: str | None = None, note: str = "", path: Path = RESULTS) -> dict[str, Any]:
    """Add (or replace) one figure in the results file and print it."""
    ratio = value / anchor_value if anchor_value else None
    entry = {
        "name": name, "value": round(value, 6), "unit": unit, "anchor": anchor,
        "anchor_value": None if anchor_value is None else round(anchor_value, 6),
        "ratio": None if ratio is None else round(ratio, 4), "target": target, "met": _met(target, value, ratio),
        "note": note, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": _machine(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"runs": {}}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {"runs": {}}
    data.setdefault("runs", {})[name] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    anchor_text = ""
    if anchor:
        anchor_text = (f"  anchor {anchor}: {anchor_value:.4g} {unit}, ratio {ratio:.2f}" if anchor_value
                       else f"  anchor {anchor}: skipped")
    verdict = {True: "met", False: "MISSED", None: ""}[entry["met"]]
    print(f"[bench] {name}: {value:.4g} {unit}{anchor_text}" + (f"  target {target}: {verdict}" if target else ""))
    sys.stdout.flush()
    return entry


def skip(name: str, why: str) -> None:
    print(f"[bench] {name}: skipped: {why}")
    sys.stdout.flush()


# -- timing ----------------------------------------------------------------------------------------
CPU: dict[str, list[float]] = {}  # command text -> CPU seconds (user + sys) of each timed run


def _key(argv: Sequence[str]) -> str:
    return " ".join(map(str, argv))


def run_once(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 600) -> float:
    """Wall seconds of one run of `argv` (stdout discarded); raises CalledProcessError on failure.
    Its CPU seconds (user + sys, steadier than wall time on a loaded machine) go to CPU."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
                   env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(_key(argv), []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def cpu_median(argv: Sequence[str]) -> float | None:
    """The median CPU seconds of the timed runs of `argv` so far (warm-up runs included)."""
    runs = CPU.get(_key(argv))
    return statistics.median(runs) if runs else None


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return ""


def time_command(argv: Sequence[str], repeat: int = 5, *, warmup: int = 1, **kw: Any) -> float:
    """The median wall time of `repeat` runs after `warmup` untimed ones (page cache, pyc files)."""
    for _ in range(warmup):
        run_once(argv, **kw)
    return statistics.median(run_once(argv, **kw) for _ in range(repeat))


def paired(a: Sequence[str], b: Sequence[str], repeat: int = 5, *, warmup: int = 1,
           env_a: dict[str, str] | None = None, env_b: dict[str, str] | None = None) -> tuple[float, float]:
    """Medians of `a` and `b`, run alternately (a, b, a, b, ...) so load hits both alike."""
    for _ in range(warmup):
        run_once(a, env=env_a)
        run_once(b, env=env_b)
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(run_once(a, env=env_a))
        tb.append(run_once(b, env=env_b))
    return statistics.median(ta), statistics.median(tb)


def run_anchor(name: str, argv: Sequence[str] | None, repeat: int = 5, **kw: Any) -> float | None:
    """Time an anchor command (median of `repeat`), or None with a message when it is missing or fails."""
    if argv is None:
        return None
    try:
        return time_command(argv, repeat, **kw)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        skip(name, f"{' '.join(map(str, argv[:3]))} failed: {exc} {detail.decode(errors='replace')[:200]}")
        return None


# -- anchors ---------------------------------------------------------------------------------------
def sqlite3_cli() -> str | None:
    found = shutil.which("sqlite3")
    if found is None:
        skip("sqlite3 CLI", "not installed (apt-get update && apt-get install -y sqlite3)")
    return found


def ensure_llm() -> str | None:
    """simonw's llm in bench-out/venv-llm (created on first use); the path of its `llm`, or None."""
    venv = OUT / "venv-llm"
    exe = venv / "bin" / "llm"
    if exe.exists():
        return str(exe)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "llm"],
                       check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        skip("llm anchor", f"cannot install llm into {venv}: {exc} {detail.decode(errors='replace')[-300:]}")
        return None
    return str(exe) if exe.exists() else None


def llm_home(folder: Path) -> Path | None:
    """An LLM_USER_PATH holding an empty but migrated logs.db (`llm logs` refuses a missing one)."""
    folder.mkdir(parents=True, exist_ok=True)
    python = OUT / "venv-llm" / "bin" / "python"
    try:
        subprocess.run([str(python), "-c", "import sys, sqlite_utils; from llm.migrations import migrate; "
                        "migrate(sqlite_utils.Database(sys.argv[1]))", str(folder / "logs.db")],
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        skip("llm anchor", f"cannot create an llm logs.db: {exc}")
        return None
    return folder


def npm_install(label: str, prefix: Path, spec: str, exe: Path, *, needs_node: bool = False) -> Path | None:
    """`exe` after `npm install spec` into `prefix` (git-ignored, once), or None with a skip message
    naming `label` (npm, or node when `needs_node`, missing; the install failing)."""
    if exe.exists():
        return exe
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or (needs_node and node is None):
        skip(label, "npm/node is not installed (apt-get install -y nodejs npm)")
        return None
    try:
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
                       check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        skip(label, f"npm install {spec} failed: {exc} {detail.decode(errors='replace')[-300:]}")
        return None
    return exe if exe.exists() else None


def stop_all(procs: Iterable[subprocess.Popen], grace: float = 10) -> None:
    """Terminate every process, waiting up to `grace` seconds each before killing it."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_healthy(proc: subprocess.Popen, url: str, seconds: float, pause: float) -> bool:
    """Whether `url`/health answers 200 within `seconds` while `proc` runs (polled every `pause` s)."""
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(pause)
    return False


def ensure_ccusage() -> str | None:
    """ccusage 20.0.24 from npm in bench-out/npm; the path of its `ccusage`, or None."""
    prefix = OUT / "npm"
    exe = npm_install("ccusage anchor", prefix, f"ccusage@{CCUSAGE_VERSION}", prefix / "node_modules" / ".bin" / "ccusage")
    return None if exe is None else str(exe)


def compile_bytecode(src: Path | str | None = None) -> None:
    """Write the tiercli package's bytecode (__pycache__, git-ignored) before timing fresh processes.
    An installed tier has it (pip compiles at install; an editable install writes it on first run),
    but this machine sets PYTHONDONTWRITEBYTECODE=1, so without this step every fresh `tier` compiled
    all its modules from source: 60-80 ms of a 10k-call report that no user pays."""
    import compileall

    root = Path(src) if src else ROOT / "src"
    compileall.compile_dir(str(root / "tiercli"), quiet=1)


def tier_argv(*args: str) -> list[str]:
    """`tier ...` in a fresh process of the project's interpreter."""
    return [sys.executable, "-m", "tiercli", *args]
