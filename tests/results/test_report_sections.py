"""The report page's answers to a researcher's questions, on a small store with per-document values: the growth
section (plan steps, parameters, the function-preservation check document by document), the selection section (each
role's choice and the plain reason when it is not the top score), "did the merge help?" (one family of paired tests
against the seed, the best single checkpoint and each parent), one number format on page and console, and a layout
that stays inside its cards at 900 and 1400 px in a real browser."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from browser import overflowing
from results_store import add_sampled_run, variant

from results.evidence import GrowthClaim, write_evidence
from results.growth_check import growth_steps, preservation
from results.helped import did_it_help
from results.numbers import interval, p_phrase, p_value, signed
from results.report import ReportOptions, render_report, write_report
from suite.store import Store

SUITE = "tiny-builtin"
BENCH = {"tiny_arith_mc": ("acc", "none"), "tiny_cloze": ("acc_norm", "none"),
         "tiny_arith_gen": ("exact_match", "strict-match"), "tiny_code": ("acc", "none")}
# the chance of a correct answer per model; the final model is far above the seed, level with the checkpoints
RATES = {"s0": 0.25, "g-width": 0.25, "g-stacked": 0.24, "r@32": 0.70, "r@64": 0.74, "r@96": 0.76, "final": 0.76}
STEPS = {"untie": [], "width": ["untie", "width"], "stacked": ["untie", "width", "depth"]}
PLAN = {"name": "tiny", "description": "untie, FFN x2, layers stacked", "seed": 0, "steps": [
    {"op": "untie"}, {"op": "width", "intermediate_size": 512, "noise": "hypercloning", "snr_db": 10,
                      "stage": "width-expanded"},
    {"op": "depth", "start": 1, "end": 3, "init": "copy", "order": "block", "stage": "stacked"}]}
RECORDED = [{"op": "untie", "params": {}, "num_parameters_before": 722304, "num_parameters_after": 853376,
             "snr_db_measured": {}},
            {"op": "width", "params": {"intermediate_size": 512, "noise": "hypercloning", "snr_db": 10},
             "num_parameters_before": 853376, "num_parameters_after": 1246592,
             "snr_db_measured": {"a": 9.9, "b": 10.1}},
            {"op": "depth", "params": {"start": 1, "end": 3, "init": "copy", "order": "block"},
             "num_parameters_before": 1246592, "num_parameters_after": 1738752, "snr_db_measured": {}}]


def _values(name: str, key: str) -> list[float]:
    rng = random.Random(f"{'s0' if name == 'g-width' else name}/{key}")  # the width stage answers as the seed
    return [float(rng.random() < RATES[name]) for _ in range(120)]


def _score(store: Store, model_id: str, name: str) -> None:
    for key, (metric, filter_) in BENCH.items():
        add_sampled_run(store, model_id, key, [_values(name, key)], metric=metric, filter_=filter_)


def _grown(store: Store, base: Path, root: Path, name: str, seed: str, steps: int) -> str:
    path = variant(base, root, name)
    growth = {"plan": {**PLAN, "steps": PLAN["steps"][:steps]}, "plan_name": "tiny", "seed": 0,
              "num_parameters": RECORDED[steps - 1]["num_parameters_after"], "steps": RECORDED[:steps],
              "source": {"fingerprint": seed, "num_parameters": 722304, "path": "seed"}}
    (path / "growth.json").write_text(json.dumps(growth))
    return store.register_model(path, name=name)


# the anchors record as merge.json keeps it: the last role got the only checkpoint left, its lowest score
RECIPE = {"method": "linear", "models": [
    {"path": "b", "weight": 0.6, "name": "r@96", "role": "math bridge",
     "evidence": {"tiny_arith_gen": 0.76, "rank": 1, "runner_up": "r@64", "p_value": 0.6, "test": "mcnemar-cc",
                  "compared": {"r@64": {"score": 0.74, "difference": 0.02, "p_value": 0.6, "test": "mcnemar-cc",
                                        "beaten": False},
                               "r@32": {"score": 0.70, "difference": 0.06, "p_value": 0.2, "test": "mcnemar-cc",
                                        "beaten": False}},
                  "decided_by": "tie-break later: 3 checkpoints within noise of the best (alpha 0.05): r@96 (0.76)"}},
    {"path": "a", "weight": 0.4, "name": "r@64", "role": "code peak",
     "evidence": {"tiny_code": 0.70, "rank": 3, "decided_by": "the only free checkpoint; earlier roles took "
                                                             "r@96 (math bridge)"}}],
    "selection": {"strategy": "anchors", "suite": SUITE, "candidates": [{"name": n} for n in ("r@32", "r@64", "r@96")],
                  "roles": [{"role": "math bridge", "metric": "tiny_arith_gen", "weight": 0.6},
                            {"role": "code peak", "metric": "tiny_code", "weight": 0.4}],
                  "split": {"kind": "suite runs", "suite": SUITE, "documents": {"tiny_code": [120]},
                            "note": "the same runs and documents the leaderboard shows (not held out)"},
                  "scores": {"tiny_arith_gen": {"r@32": 0.70, "r@64": 0.74, "r@96": 0.76},
                             "tiny_code": {"r@32": 0.75, "r@64": 0.70, "r@96": 0.78}}}}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Store:
    """seed s0 -> width stage g-width (untie, width) and g-stacked (+ depth copy) -> run r (steps 32, 64, 96)
    -> final = 0.6 x r@96 + 0.4 x r@64; every model scored on 120 documents of each tiny-builtin benchmark."""
    root = tmp_path_factory.mktemp("sections")
    store = Store(root / "results.duckdb")
    ids = {"s0": store.register_model(variant(tiny_model, root, "s0"), kind="seed", name="s0")}
    ids["g-width"] = _grown(store, tiny_model, root, "g-width", ids["s0"], 2)
    ids["g-stacked"] = _grown(store, tiny_model, root, "g-stacked", ids["s0"], 3)
    for step in (32, 64, 96):
        training = {"run_id": "r", "step": step, "tokens": step * 1024, "parent_fingerprint": ids["g-stacked"]}
        path = variant(tiny_model, root / "r" / "checkpoints", f"step-{step:06d}", training=training)
        ids[f"r@{step}"] = store.register_model(path)
    merge = {"method": "linear", "models": [{"path": "a", "fingerprint": ids["r@64"], "weight": 0.4},
                                            {"path": "b", "fingerprint": ids["r@96"], "weight": 0.6}],
             "recipe": RECIPE}
    ids["final"] = store.register_model(variant(tiny_model, root, "final", merge=merge), name="final")
    for name, model_id in ids.items():
        _score(store, model_id, name)
    return store


def test_one_number_format() -> None:
    assert p_value(1.2e-60) == "<1e-4" and p_phrase(1.2e-60) == "p < 1e-4"
    assert p_value(0.012345) == "0.012" and p_phrase(0.5, "adjusted p") == "adjusted p = 0.5"
    assert p_value(1e-4) == "0.0001" and p_value(1.0) == "1"
    assert signed(1.234) == "+1.23" and signed(-0.5) == "-0.50" and interval(-1.2, 3.456) == "[-1.20, +3.46]"


def test_growth_steps_and_function_preservation(db: Store) -> None:
    width = preservation(db, "g-width", "s0", suite=SUITE)
    assert width.differ == [] and width.documents == 4 * 120
    assert width.sentence(["untie", "width"]) == ("g-width (function-preserving steps: untie, width) scores exactly "
                                                  "as s0 on every benchmark (4; all 480 per-document values equal)")
    stacked = preservation(db, "g-stacked", "s0", suite=SUITE)
    assert stacked.differ and "did not preserve the function" in stacked.sentence()
    steps = growth_steps(json.loads(db.query("SELECT growth FROM models WHERE name = 'g-stacked'")["growth"].iloc[0]))
    assert [(s.op, s.preserving, s.stage) for s in steps] == [("untie", True, None), ("width", True, "width-expanded"),
                                                              ("depth", False, "stacked")]
    assert steps[1].snr_db == pytest.approx(10.0) and steps[1].before == 853376 and steps[1].after == 1246592


def test_did_it_help_is_one_family(db: Store) -> None:
    helped = did_it_help(db, "final", seed="s0", suite=SUITE)
    assert [(b.name, b.roles) for b in helped.baselines] == [
        ("s0", ("seed",)), ("r@96", ("best single checkpoint", "merge parent (weight 0.6)")),
        ("r@64", ("merge parent (weight 0.4)",))]
    assert helped.best_rule.startswith("r@96, the highest unweighted mean over the 4 benchmarks")
    assert helped.tests == 15 and all(r.tests == 15 for r in helped.reports)  # 3 pairs x (4 benchmarks + average)
    assert {r.verdict for r in helped.reports[0].family_rows()} == {"better"}  # far above the seed
    assert helped.reports[1].average.verdict == "no detectable difference"
    # a checkpoint as the final model: its parent is the grown model, not a merge parent
    single = did_it_help(db, "r@64", seed="s0", suite=SUITE)
    assert [(b.name, b.roles) for b in single.baselines] == [("s0", ("seed",)), ("r@96", ("best single checkpoint",))]


def test_page_sections_and_console_agree(db: Store, tmp_path: Path) -> None:
    html = render_report(db, ReportOptions(run="r", suite=SUITE))
    text = re.sub(r"<[^>]+>", "", html)
    for section in ("helped", "growth", "selection", "scores", "leaderboard"):
        assert f'id="{section}"' in html, section
    # growth: the steps with parameters, the check, what each stage scored
    assert "722,304" in text and "1,738,752" in text and "measured SNR (dB)" in text
    assert "g-width (function-preserving steps: untie, width) scores exactly as s0" in text
    assert "What each stage scored (points)" in text
    # selection: the code peak took the only checkpoint left, its rank said plainly
    assert "code peak (tiny_code, weight 0.4): r@64, 70.00 points (rank 3 of 3)" in text
    assert "already taken by an earlier role" in text and "Its score ranks 3 of 3 among all candidates" in text
    assert ("r@96 has the top score among the free checkpoints but does not beat r@64, r@32 beyond noise (paired "
            "test), so they count as tied, and the tie-break took the latest step.") in text
    # marks: significance, with a legend
    assert "Marks: bold: the row's best score and every score the paired test cannot tell from it" in text
    # did it help: one family, and the console prints the same p-values as the page
    assert "Holm over 15 tests together" in text
    assert not re.search(r"\d\.?\d*e-\d+", re.sub(r"<svg.*?</svg>", "", text, flags=re.S)), "a p-value in e-notation"
    console = write_evidence(db, tmp_path, suite=SUITE, models=["s0", "r@*", "final"], final="final", seed="s0",
                             growth=GrowthClaim("g-width", ["untie", "width"]))
    lines = console["final_vs_seed"]
    assert "Holm over 15 tests together" in lines[0] and lines[1].startswith("best single checkpoint: r@96")
    assert lines[2].split() == ["against", "tiny_arith_mc", "tiny_cloze", "tiny_arith_gen", "tiny_code", "average"]
    assert lines[3].startswith("s0 (seed) ") and lines[4].startswith("r@96 (best, parent 0.6) ")
    for line in lines[3:]:  # the page's grid holds the console's cells
        cells = re.findall(r"([+-]\d+\.\d\d) (better|worse|≈)", line)
        assert len(cells) == 5, line
        for number, mark in cells:
            assert f"{number} <small>{mark}</small>" in html, (number, mark)
    # the evidence file's p-values read as the page's
    evidence = Path(console["evidence"]).read_text()
    block = evidence[evidence.index("## final vs r@64"):]
    p_raw, p_adj = re.search(r"- tiny_code: .*?, p [=<] (\S+), adjusted p [=<] (\S+) \(", block).groups()
    assert re.search(rf"<td>[<]?{re.escape(p_raw)}</td><td>[<]?{re.escape(p_adj)}</td>", html.replace("&lt;", "<"))
    assert console["growth_check"] in text


def test_page_fits_its_cards_at_900_and_1400_px(db: Store, tmp_path: Path) -> None:
    out = write_report(db, tmp_path / "report.html", ReportOptions(run="r", suite=SUITE))
    assert overflowing(out, widths=(900, 1400)) == {900: [], 1400: []}
