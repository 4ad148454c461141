"""The tiny pipeline end to end (real growth, Muon training, lm-eval sweeps, merge), its store, crash recovery, and
the README's default run (`growbench pipeline --config tiny`, no benchmark mirror): a quiet console and a report
page checked in a real browser."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from browser import visit

from suite.pipeline.config import load_pipeline

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
CONSOLE_BUDGET = 6144  # bytes of stdout + stderr for the whole default run (about 5 KB: the table, the grid, the paths)


def small_config(tmp_path: Path) -> Path:
    """The shipped tiny config, cut down for CI: fewer steps and benchmarks, 4 documents per task."""
    data = yaml.safe_load((Path(load_pipeline("tiny").source)).read_text())
    data["name"] = "ci"
    data["train"]["overrides"] = {"threads": 1, "max_steps": 12, "checkpoint": {"every": 4, "keep_states": 2}}
    data["eval"].update(benchmarks=["arc_challenge", "piqa", "mbpp"], limit=4, seed_model=True)
    data["select"]["config"] = str(Path(load_pipeline("tiny").source).with_name("tiny-anchors.yaml"))
    path = tmp_path / "ci.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def pipeline_cmd(config: Path, workdir: Path, db: Path, mirror: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from suite.cli import main; main()", "pipeline", "--config", str(config),
            "--workdir", str(workdir), "--db", str(db), "--data-dir", str(mirror), *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, benchmark_mirror: Path) -> dict:
    """One real run of the cut-down tiny config (CLI, fresh store), shared by the tests that read it back."""
    tmp = tmp_path_factory.mktemp("small-run")
    config, workdir, db = small_config(tmp), tmp / "work", tmp / "results.duckdb"
    proc = run(pipeline_cmd(config, workdir, db, benchmark_mirror))
    return {"config": config, "workdir": workdir, "db": db, "proc": proc, "tmp": tmp}


def test_tiny_pipeline_fills_the_store(small_run: dict) -> None:
    from suite.store import Store

    workdir, db, proc = small_run["workdir"], small_run["db"], small_run["proc"]
    assert "Avg General" in proc.stdout and "ci-final" in proc.stdout
    assert f"database: {db}" in proc.stdout and "final model:" in proc.stdout

    store = Store(db)
    models = store.query("SELECT * FROM models").set_index("name")
    grown = models.loc["ci-grown"]
    assert grown["kind"] == "grown" and json.loads(grown["growth"])["plan_name"] == "tiny"
    assert json.loads(grown["parents"]) == [models.loc["ci-seed", "model_id"]]
    trained = models[models["kind"] == "trained"].sort_values("step")
    assert list(trained["step"]) == [4, 8, 12]
    assert list(trained["tokens"]) == [4 * 1024, 8 * 1024, 12 * 1024]
    final = models.loc["ci-final"]
    merge = json.loads(final["merge"])
    assert final["kind"] == "merged"
    assert sorted(json.loads(final["parents"])) == sorted(m["fingerprint"] for m in merge["models"])
    assert set(json.loads(final["parents"])) <= set(trained["model_id"])
    assert abs(sum(m["weight"] for m in merge["models"]) - 1.0) < 1e-6

    runs = store.query("SELECT m.name, r.benchmark, r.status, r.limit_n FROM eval_runs r JOIN models m USING "
                       "(model_id)")
    assert set(runs["status"]) == {"finished"}
    assert set(runs["limit_n"]) == {4}
    evaluated = set(zip(runs["name"], runs["benchmark"]))
    for name in ["ci-seed", "ci-width-expanded", "ci-grown", *trained.index, "ci-final"]:
        for bench in ("arc_challenge", "piqa", "mbpp"):
            assert (name, bench) in evaluated, (name, bench)
    from results.growth_check import preservation

    assert preservation(store, "ci-width-expanded", "ci-seed", suite="openseek-mid-v1").differ == []
    assert "did the merge help? the final model paired over the same documents" in proc.stdout
    board = (workdir / "report" / "leaderboard.md").read_text()
    assert "ci-final" in board and "OpenSeek-Mid-v1" in board
    for png in ("run.png", "compare.png"):
        assert (workdir / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_the_dry_run_prints_the_plan_the_real_run_executed(small_run: dict, benchmark_mirror: Path) -> None:
    """The plan `--dry-run` prints is the one the run executes: the models it evaluated (by name), the benchmarks,
    the checkpoint steps, the parameters and the job count, read back from the step markers and the store."""
    from suite.pipeline.plan import describe, plan_pipeline
    from suite.store import Store

    config, workdir, db = small_run["config"], small_run["workdir"], small_run["db"]
    plan = plan_pipeline(load_pipeline(config), workdir, benchmark_mirror)
    dry = subprocess.run(pipeline_cmd(config, workdir, db, benchmark_mirror, "--dry-run"), capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == describe(plan)
    assert "3 benchmarks x 7 models (seed, width-expanded, grown, 3 checkpoints, final) = 21 eval jobs" in dry.stdout

    markers = {p.stem: json.loads(p.read_text())["outputs"] for p in (workdir / ".steps").glob("*.json")}
    assert markers["grow"]["num_parameters"] == plan.grow.growth.final.num_parameters
    assert markers["grow"]["stage"]["name"] == plan.grow.stage.name
    assert markers["train"]["checkpoints"] == [str(m.path) for m in plan.train.checkpoints]
    assert plan.train.steps == [4, 8, 12]
    assert markers["sweep"]["checkpoints"] == markers["sweep"]["engine_loads"] == len(plan.eval.swept)
    assert sum(markers["sweep"]["jobs"].values()) + len(markers["evaluate"]["results"]) == plan.eval.jobs
    assert markers["build"]["path"] == str(plan.eval.final.path)

    runs = Store(db).query("SELECT m.name, m.step, r.benchmark, r.suite, r.limit_n FROM eval_runs r "
                           "JOIN models m USING (model_id)")
    assert len(runs) == plan.eval.jobs
    assert set(zip(runs["name"], runs["benchmark"])) == {(m.name, b.key) for m in plan.eval.models
                                                         for b in plan.eval.benchmarks}
    assert sorted(int(s) for s in set(runs["step"].dropna())) == plan.train.steps
    assert set(runs["suite"]) == {plan.eval.suite.name} and set(runs["limit_n"]) == {plan.eval.options.limit}


def test_a_run_killed_during_training_resumes(small_run: dict, benchmark_mirror: Path) -> None:
    from suite.store import Store

    config, tmp_path = small_run["config"], small_run["tmp"]
    runs = Store(small_run["db"]).query("SELECT run_id FROM eval_runs")
    # A second run in a fresh work dir, killed during training, then re-run: finished steps are not redone.
    workdir2 = tmp_path / "work2"
    db2 = tmp_path / "second.duckdb"  # a fresh store, so the re-run's evaluations are really done, not reused
    proc2 = subprocess.Popen(pipeline_cmd(config, workdir2, db2, benchmark_mirror), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 900
    while not list((workdir2 / "train" / "checkpoints").glob("step-*")):
        assert proc2.poll() is None and time.monotonic() < deadline, "pipeline ended before its first checkpoint"
        time.sleep(0.5)
    os.killpg(proc2.pid, signal.SIGKILL)
    proc2.wait()
    markers = {p.stem: p.stat().st_mtime_ns for p in (workdir2 / ".steps").glob("*.json")}
    assert {"seed", "grow"} <= set(markers) and "train" not in markers
    again = run(pipeline_cmd(config, workdir2, db2, benchmark_mirror))
    assert "[seed] done already, skipped" in again.stdout and "[grow] done already, skipped" in again.stdout
    assert "resuming training" in again.stdout
    for step, mtime in markers.items():
        assert (workdir2 / ".steps" / f"{step}.json").stat().st_mtime_ns == mtime
    assert (workdir2 / "final" / "merge.json").exists()
    second = Store(db2).query("SELECT status, count(*) AS n FROM eval_runs GROUP BY status")
    assert dict(zip(second["status"], second["n"])) == {"finished": len(runs)}
    # And a third run finds everything done.
    third = run(pipeline_cmd(config, workdir2, db2, benchmark_mirror))
    assert third.stdout.count("done already, skipped") == 8


def test_dry_run_of_the_card_prints_the_plan() -> None:
    proc = subprocess.run([sys.executable, "-c", "from suite.cli import main; main()", "pipeline", "--config",
                           "openseek-mid-v1", "--dry-run"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "4,022,468,096 -> width-expanded 7,101,021,696 -> stacked 10,613,858,816" in out
    assert "1,360,000,000,000 tokens" in out and "81,063 steps" in out and "41,724 steps" in out
    assert ("14 benchmarks x 64 models (seed, width-expanded, grown, 60 checkpoints, final) = 896 eval jobs"
            in out)
    # the card's merged iterations against its own budget, and the steps this schedule has instead
    assert "the card merged iterations 169,984-219,136, beyond the 122,787 steps its own budget gives" in out
    assert "this schedule's 60 checkpoints are steps 2,048, 4,096, ..., 120,832 and 122,787" in out


def test_bad_pipeline_input_is_one_line(tmp_path: Path) -> None:
    cli = [sys.executable, "-c", "from suite.cli import main; main()", "pipeline"]
    proc = subprocess.run([*cli, "--config", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown pipeline config 'nope'" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: {fixture: {}}\ngrow: {plan: tiny}\ntrain: {config: tiny}\nbogus: 1\n")
    proc = subprocess.run([*cli, "--config", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "bogus" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([*cli, "--config", "tiny", "--only", "select", "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "has not completed" in proc.stderr
    late = tmp_path / "late.yaml"  # wrong only in the eval section: refused before growth and training run
    late.write_text("name: late\nseed: {fixture: {}}\ngrow: {plan: tiny}\ntrain: {config: tiny}\n"
                    "eval: {suite: tiny-builtin, engine: {max_num_seqz: 4}}\n")
    proc = subprocess.run([*cli, "--config", str(late), "--workdir", str(tmp_path / "late")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "max_num_seqz" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "late").exists()


def test_readme_default_pipeline_is_quiet_and_ends_with_its_report(readme_run) -> None:
    """`growbench pipeline --config tiny` as a new user runs it: fresh folder and home, no mirror, no hub."""
    from suite.store import Store

    user, console = readme_run.folder, readme_run.console
    assert readme_run.returncode == 0, console[-3000:]
    work = user / "runs" / "tiny"
    page = work / "report" / "report.html"
    assert len(console.encode()) < CONSOLE_BUDGET, f"{len(console.encode())} bytes on the console:\n{console}"
    assert console.splitlines()[-1] == "report: runs/tiny/report/report.html"  # below the working directory: relative
    log = (work / "pipeline.log").read_text()
    assert "library output goes to runs/tiny/pipeline.log" in console
    assert "Overwriting default num_fewshot" in log and "num_fewshot" not in console  # captured, not lost
    assert "tiny-builtin" in console and "24 finished" in console  # seed, width-expanded, grown, 3 checkpoints
    assert "growth: tiny-width-expanded (function-preserving steps: untie, width) scores exactly as tiny-seed" in console
    assert "did the merge help? the final model paired over the same documents" in console and "better" in console

    store = Store(user / "runs" / "growbench.duckdb")
    final = store.query("SELECT r.benchmark, s.value FROM scores s JOIN eval_runs r USING (run_id) JOIN models m "
                        "USING (model_id) WHERE m.name = 'tiny-final' AND s.is_primary AND r.status = 'finished'")
    assert len(final) == 4
    # the function-preserving growth steps (untie, HyperCloning width) leave every stored score as the seed's, and
    # the final model beats the seed beyond noise on at least one benchmark, each verdict resting on 200 documents
    from results.compare import compare
    from results.growth_check import preservation

    assert preservation(store, "tiny-width-expanded", "tiny-seed", suite="tiny-builtin").differ == []
    verdicts = compare(store, "tiny-final", "tiny-seed", suite="tiny-builtin").rows
    assert len(verdicts) == 4 and all(r.n == 200 for r in verdicts), verdicts
    assert any(r.verdict == "better" for r in verdicts), verdicts
    assert re.search(r"tiny-seed +200  ±", console)  # documents and standard errors, one line per model
    visit_ = visit(page)
    assert visit_.requests == [page.as_uri()] and visit_.console_errors == []
    board = visit_.tables["leaderboard"]
    column = board[0].index("tiny-final")
    shown = {row[0]: row[column] for row in board[1:]}
    titles = {"tiny_arith_mc": "Tiny Arith MC (3-shot)", "tiny_cloze": "Tiny Cloze (3-shot)",
              "tiny_arith_gen": "Tiny Arith Gen (3-shot CoT)", "tiny_code": "Tiny Code MC (3-shot)"}
    for benchmark, value in zip(final["benchmark"], final["value"]):
        assert shown[titles[benchmark]] == f"{value * 100:.2f}", benchmark
    assert "tiny-seed" in visit_.text and "tiny-grown" in visit_.text and "tiny-final vs tiny-train@96" in visit_.text
    assert visit_.screenshot_std > 0.05 and len(visit_.plot_std) == 2 and min(visit_.plot_std) > 0.05
