"""What the checkpoint benches share: the I/O floor of a job, child processes, warm inputs, the time breakdown.

Growth, merge and copies are I/O jobs, so each bench measures, in the same run, the floor for its job: `cat` of
every input file (read once, from the page cache where it is warm) then `dd conv=fsync` of one file the size of the
output (written once, on disk before dd exits, as growbench fsyncs before it publishes). The two run one after the
other, so the floor is their sum; a job that overlaps reading, computing and writing can come in under it. Every
side starts from the same warm page cache (`warm` reads its inputs first) and runs as its own child process, whose
peak RSS comes from wait4. Sides alternate within each round (`--repeat`), and the best wall time of each counts,
which damps the load other processes put on a shared machine; the load averages are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

GIB = 2**30
MIB = 2**20


@dataclass
class Run:
    wall: float  # seconds, spawn to exit
    cpu: float  # user + system seconds of the child and what it waited for
    rss: int  # peak resident bytes
    report: dict = field(default_factory=dict)  # what a growbench child printed (JSON on its last line)
    disk_busy: float | None = None  # seconds the output's block device had I/O in flight


def harness_args(description: str, work: str, rounds: str, keep: str) -> argparse.ArgumentParser:
    """The flags every floor bench takes: its scratch folder, interleaved rounds, keeping the synthetic inputs and
    the hidden --child that runs one side in its own process."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--work", type=Path, default=Path(work))
    ap.add_argument("--repeat", type=int, default=1, help=f"interleaved rounds ({rounds}); best counts")
    ap.add_argument("--keep", action="store_true", help=f"keep the synthetic {keep} for the next run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap


def data_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def process_age() -> float:
    """Seconds since this process started (Linux /proc; 0 elsewhere): what a child spent before its job began,
    on interpreter start and imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return float(Path("/proc/uptime").read_text().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def child_report(started: float, job_s: float, cpu_s: float, stats: dict, **extra: object) -> str:
    """The JSON line a growbench child prints last: time before the job, the job's wall and CPU time (every thread)
    and breakdown, extras."""
    return json.dumps({"started_s": started, "job_s": job_s, "job_cpu_s": cpu_s, "stats": stats, **extra})


def warm(paths: Iterable[Path]) -> None:
    """Read every file under `paths` once, so the side that follows finds it in the page cache."""
    files = [str(f) for p in paths for f in data_files(p)]
    if files:
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)


def _device(path: Path) -> str | None:
    dev = os.stat(path).st_dev
    for line in Path("/proc/diskstats").read_text().splitlines():
        major, minor, name = line.split()[:3]
        if (int(major), int(minor)) == (os.major(dev), os.minor(dev)):
            return name
    return None


def io_ticks(device: str | None) -> float | None:
    """Seconds the block device has had I/O in flight since boot (/proc/diskstats, field 13)."""
    if device is None:
        return None
    for line in Path("/proc/diskstats").read_text().splitlines():
        parts = line.split()
        if parts[2] == device:
            return int(parts[12]) / 1000
    return None


# Sides are started by this small helper process, not by the bench: Linux starts a child's peak RSS (ru_maxrss)
# at the size of the process that spawned it, and the bench holds torch and its synthetic inputs.
_SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job["argv"], stdout=out, stderr=err, env=job["env"], cwd=job["cwd"])
        _, status, usage = os.wait4(proc.pid, 0)
    print(json.dumps({"wall": time.perf_counter() - start, "code": os.waitstatus_to_exitcode(status),
                      "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024}), flush=True)
"""
_spawner: list[subprocess.Popen] = []


def _spawn(argv: list[str], env: dict[str, str] | None, cwd: Path | None, out: Path, err: Path) -> dict:
    if not _spawner:
        _spawner.append(subprocess.Popen([sys.executable, "-c", _SPAWNER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True))
    proc = _spawner[0]
    job = {"argv": argv, "env": env or dict(os.environ), "cwd": str(cwd) if cwd else None, "out": str(out),
           "err": str(err)}
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def run_child(argv: list[str], *, scratch: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Run:
    """Run one side; its wall, CPU and peak RSS are the child's alone (wait4), its disk busy time the device's.

    A growbench child prints a JSON report as its last stdout line, which lands in `Run.report`."""
    device = _device(scratch)
    ticks = io_ticks(device)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        done = _spawn(argv, env, cwd, out, err)
        after = io_ticks(device)
        if done["code"] != 0:
            sys.exit(f"{' '.join(argv[:4])} failed ({done['code']}):\n{err.read_text()[-3000:]}")
        last = out.read_text().strip().splitlines()[-1:]
    report = json.loads(last[0]) if last and last[0].startswith("{") else {}
    return Run(done["wall"], done["cpu"], done["rss"], report,
               None if ticks is None or after is None else after - ticks)


@dataclass
class Floor:
    read: float  # seconds of `cat` of every input
    write: float  # seconds of `dd conv=fsync` of an output-sized file
    cpu: float  # CPU seconds of the two

    @property
    def wall(self) -> float:
        return self.read + self.write


def floor(inputs: list[Path], out_bytes: int, scratch: Path) -> Floor:
    """`cat` of every input file, then `dd conv=fsync` of `out_bytes` to `scratch`, one after the other."""
    files = [str(f) for p in inputs for f in data_files(p)]
    target = scratch / "floor.bin"
    try:
        cat = run_child(["sh", "-c", 'cat "$@" > /dev/null', "cat", *files], scratch=scratch)
        dd = run_child(["dd", "if=/dev/zero", f"of={target}", "bs=16M", f"count={out_bytes}", "iflag=count_bytes",
                        "conv=fsync"], scratch=scratch)
        return Floor(cat.wall, dd.wall, cat.cpu + dd.cpu)
    finally:
        target.unlink(missing_ok=True)


def job_cpu() -> float:
    """CPU seconds of this whole process so far (every thread): a child's job CPU is the difference."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def before_after(run: Run) -> str:
    """How a child's wall time splits around its job: start and imports, the job, exit."""
    started, job = run.report.get("started_s", 0.0), run.report["job_s"]
    return (f"{started:.2f} s interpreter start and imports, {job:.2f} s the job ({run.report['job_cpu_s']:.2f} CPU s, "
            f"every thread), {max(0.0, run.wall - started - job):.2f} s exit")


def breakdown(run: Run) -> list[str]:
    """A child's time breakdown (its growth.iostats summary): per kind busy / covered / CPU seconds, then idle,
    the CPU no span accounts for, and how long the output's disk was busy."""
    summary = run.report["stats"]
    wall = summary["wall"]
    lines = [f"  {'':10}{'busy s':>9}{'covered s':>11}{'% of wall':>11}{'CPU s':>8}   (busy: summed over threads; "
             "covered: wall time with any)"]
    for kind, busy in summary["busy"].items():  # IOStats.summary's order: growth.iostats.KINDS, then any others
        covered = summary["covered"][kind]
        cpu = summary.get("cpu", {}).get(kind, 0.0)
        lines.append(f"  {kind:10}{busy:9.2f}{covered:11.2f}{100 * covered / wall:10.0f}%{cpu:8.2f}")
    lines.append(f"  {'idle':10}{'':9}{summary['idle']:11.2f}{100 * summary['idle'] / wall:10.0f}%"
                 "   (no instrumented work running)")
    spans_cpu = sum(summary.get("cpu", {}).values())
    lines.append(f"  fsync counts starting writeback, waiting for it and fsync; CPU s is the instrumented thread's: "
                 f"{max(0.0, run.cpu - spans_cpu):.1f} of the child's {run.cpu:.1f} CPU s fall outside the spans "
                 "(imports, torch's intra-op helper threads, freeing memory)")
    if run.disk_busy is not None:
        lines.append(f"  disk busy {run.disk_busy:.2f} s of the child's {run.wall:.2f} s (the output's block device "
                     "had I/O in flight, from any process)")
    return lines


def table(rows: list[tuple[str, Run | None, float]], floor_s: float, repeat: int) -> list[str]:
    """One line per side: best wall, its CPU and peak RSS, and the ratio to the floor."""
    lines = [f"{'side':40}{'wall s':>8}{'CPU s':>8}{'peak RSS GiB':>14}{'x floor':>9}"]
    for name, run, wall in rows:
        cpu = f"{run.cpu:8.1f}" if run else f"{'':8}"
        rss = f"{run.rss / GIB:14.2f}" if run and run.rss else f"{'':14}"
        lines.append(f"{name:40}{wall:8.2f}{cpu}{rss}{wall / floor_s:9.2f}")
    lines.append(f"(best of {repeat} interleaved rounds; each side starts from a warm page cache)")
    return lines


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
