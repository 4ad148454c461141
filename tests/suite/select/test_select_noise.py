"""Noise-aware anchors: a role's best checkpoint is taken only when it beats the others beyond noise; otherwise the
recipe's tie-break decides, and the recipe's evidence says which rule did and with what p-value. Without any noise
estimate the values decide (never a tie), and the recipe records the split its scores rest on."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from results_store import add_run, add_sampled_run, binary_pair, variant

from growth.foundation.errors import ConfigError
from suite.select.selector import SelectOptions, find_candidates, select
from suite.store import Store

SUITE = "tiny-builtin"


@pytest.fixture(scope="module")
def setup(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    """Three checkpoints. tiny_cloze: per-document values, step 100 beats step 200 (McNemar p = 0.0034) and 300 is
    close to 200. tiny_code: per-document values 0.76 / 0.64 / 0.66, none beyond noise of step 100. tiny_arith_mc:
    no per-document values, 0.60 +- 0.01 / 0.59 +- 0.01 / 0.50 +- 0.01 (stderr z-test). tiny_arith_gen: neither
    per-document values nor a stderr, 0.80 / 0.70 / 0.30."""
    root = tmp_path_factory.mktemp("noise")
    store = Store(root / "results.duckdb")
    (root / "run" / "checkpoints").mkdir(parents=True)
    good, weak = binary_pair(12, 1, 20, 7)
    close, _ = binary_pair(1, 0, 20, 19)  # 21 of 40 right
    code = {100: binary_pair(8, 2, 30, 10)[0], 200: binary_pair(8, 2, 30, 10)[1], 300: [1] * 33 + [0] * 17}
    for step, cloze, arith, gen in ((100, good, 0.60, 0.80), (200, weak, 0.59, 0.70), (300, close, 0.50, 0.30)):
        path = variant(tiny_model, root / "run" / "checkpoints", f"step-{step:06d}",
                       training={"run_id": "mid", "step": step, "tokens": step * 1000, "stage": 1})
        model_id = store.register_model(path)
        add_sampled_run(store, model_id, "tiny_cloze", [cloze], metric="acc_norm")
        add_sampled_run(store, model_id, "tiny_code", [code[step]])
        add_run(store, model_id, "tiny_arith_mc", arith, 0.01, suite=SUITE)
        add_run(store, model_id, "tiny_arith_gen", gen, None, suite=SUITE, metric="exact_match")
    return store, root / "run"


def recipe(setup: tuple[Store, Path], tmp_path: Path, roles: list[dict], **extra):
    store, run = setup
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump({"roles": roles, **extra}))
    return select(store, find_candidates(store, run=run), "anchors", SelectOptions(suite=SUITE, config=path))


def choose(setup: tuple[Store, Path], tmp_path: Path, roles: list[dict], **extra) -> list:
    return recipe(setup, tmp_path, roles, **extra).models


def mcnemar_cc(n10: int, n01: int) -> float:
    return math.erfc((abs(n10 - n01) - 1) / math.sqrt(n10 + n01) / math.sqrt(2))


def test_the_best_is_taken_only_beyond_noise(setup, tmp_path: Path) -> None:
    [cloze] = choose(setup, tmp_path, [{"role": "prose", "metric": "tiny_cloze", "weight": 1}])
    assert cloze.name == "mid@100"
    assert cloze.evidence["test"] == "mcnemar-cc" and cloze.evidence["p_value"] == pytest.approx(mcnemar_cc(12, 1))
    assert cloze.evidence["decided_by"].startswith("beats every other free checkpoint beyond noise")
    # every comparison behind the choice is in the recipe
    compared = cloze.evidence["compared"]
    assert set(compared) == {"mid@200", "mid@300"} and all(c["beaten"] for c in compared.values())
    assert compared["mid@300"]["difference"] == pytest.approx(0.8 - 0.525) and "p_value" in compared["mid@300"]


def test_within_noise_the_tie_break_decides_and_says_so(setup, tmp_path: Path) -> None:
    [code] = choose(setup, tmp_path, [{"role": "code", "metric": "tiny_code", "weight": 1}])
    # 0.76 vs the runner-up 0.66: 7 documents only step 100 solves, 2 only step 300: z = (5 - 1) / 3, p = 0.18;
    # 0.76 vs 0.64 (8 against 2): p = 0.11. All three are within noise: the latest, step 300, ranked second
    assert code.name == "mid@300" and code.evidence["rank"] == 2
    assert code.evidence["runner_up"] == "mid@300" and code.evidence["p_value"] == pytest.approx(mcnemar_cc(7, 2))
    assert code.evidence["decided_by"].startswith("tie-break later: 3 checkpoints within noise of the best")
    [earliest] = choose(setup, tmp_path, [{"role": "code", "metric": "tiny_code", "weight": 1}],
                        tie_break="earlier")
    assert earliest.name == "mid@100"
    [by_value] = choose(setup, tmp_path, [{"role": "code", "metric": "tiny_code", "weight": 1}],
                        noise={"test": "none"})
    assert by_value.name == "mid@100" and by_value.evidence["decided_by"] == "value"


def test_without_per_document_values_the_stored_stderr_decides(setup, tmp_path: Path) -> None:
    first, second = choose(setup, tmp_path, [{"role": "a", "metric": "tiny_arith_mc", "weight": 1},
                                             {"role": "b", "metric": "tiny_arith_mc", "weight": 1}])
    # 0.60 vs 0.59 +- 0.01 each: z = 0.71, p = 0.48 -> tie with step 200 -> later; 0.50 is 7 se below: not tied
    assert first.name == "mid@200" and first.evidence["test"] == "z-test (stderr)"
    assert first.evidence["p_value"] == pytest.approx(0.4795, abs=1e-4)
    # the second role has 100 and 300 left: 0.60 vs 0.50 is beyond noise
    assert second.name == "mid@100" and second.evidence["decided_by"].startswith("beats every other")


def test_without_any_noise_estimate_the_values_decide(setup, tmp_path: Path) -> None:
    # 0.80 / 0.70 / 0.30, no documents and no stderr stored: never a tie (tie-break "later" would take 0.30)
    made = recipe(setup, tmp_path, [{"role": "math", "metric": "tiny_arith_gen", "weight": 0.5},
                                    {"role": "more", "metric": "tiny_arith_gen", "weight": 0.3},
                                    {"role": "last", "metric": "tiny_arith_gen", "weight": 0.2}])
    first, second, third = made.models
    assert (first.name, second.name, third.name) == ("mid@100", "mid@200", "mid@300")
    assert first.evidence["test"] == "values (no noise estimate stored)" and first.evidence["p_value"] is None
    assert "by value against mid@200, mid@300: no noise estimate stored" in first.evidence["decided_by"]
    assert third.evidence["decided_by"] == ("the only free checkpoint; earlier roles took mid@100 (math), "
                                            "mid@200 (more)")
    split = made.selection["split"]
    assert split["kind"] == "suite runs" and split["documents"] == {"tiny_arith_gen": [100]}


def test_noise_settings_are_checked(setup, tmp_path: Path) -> None:
    role = [{"role": "code", "metric": "tiny_code", "weight": 1}]
    with pytest.raises(ConfigError, match="tie_break must be one of later, earlier, value"):
        choose(setup, tmp_path, role, tie_break="newest")
    with pytest.raises(ConfigError, match="noise.alpha must be a number between 0 and 1"):
        choose(setup, tmp_path, role, noise={"alpha": 5})
    with pytest.raises(ConfigError, match="noise.test must be one of paired, stderr, none"):
        choose(setup, tmp_path, role, noise={"test": "t"})


FALSE_MOVES: dict[str, float] = {}


def test_spending_alpha_across_trials_bounds_false_moves() -> None:
    # search's default budget (12 candidates: the start and 11 trials) on a null dev split: 100 documents, every
    # trial's merge as good as the current one, 15% of documents discordant. A false move is any trial kept.
    from suite.eval.significance import mcnemar
    from suite.select.noise import NoiseRule

    rule, trials, selections = NoiseRule(), 11, 4000
    rng = np.random.default_rng(11)
    counts = rng.multinomial(100, [0.075, 0.075, 0.85], size=(selections, trials))
    p = np.vectorize(mcnemar)(counts[..., 0], counts[..., 1])
    spent = float((p < rule.trial_alpha(trials)).any(axis=1).mean())
    each = float((p < rule.alpha).any(axis=1).mean())
    FALSE_MOVES.update({"alpha / 11 per trial": spent, "alpha per trial": each})
    assert rule.trial_alpha(trials) == pytest.approx(0.05 / 11)
    assert spent <= rule.alpha < each



def test_the_recipe_says_which_split_chose_and_shows_its_scores(setup, tmp_path: Path) -> None:
    from results.selection import selection_lines, summarize

    made = recipe(setup, tmp_path, [{"role": "prose", "metric": "tiny_cloze", "weight": 0.6},
                                    {"role": "code", "metric": "tiny_code", "weight": 0.4}])
    lines = selection_lines(made)
    assert lines[0] == ("selection: anchors ranked each candidate's counted run in suite tiny-builtin (40/50 "
                        "documents per benchmark): the same runs and documents the leaderboard shows (not held out)")
    assert lines[1].split() == ["tiny_cloze", "tiny_code"]
    # one row per candidate with the scores (points) that chose, and the role it took
    assert lines[2].endswith("80.00      76.00  prose (weight 0.6): beats every other free checkpoint beyond noise")
    assert lines[3].split()[:3] == ["mid@200", "52.50", "64.00"] and lines[3].endswith("64.00")  # not chosen
    assert lines[4].split()[:3] == ["mid@300", "52.50", "66.00"]
    assert lines[4].endswith("code (weight 0.4): tie-break later") and len(lines) == 7
    # each role's choice in plain words, the page's too: why a checkpoint that is not the top score was taken
    assert lines[5].startswith("  prose: ") and "beats every other free checkpoint beyond noise" in lines[5]
    assert lines[6].startswith("  code: mid@300. mid@300 has the top score among the free checkpoints but does not "
                               "beat mid@200 beyond noise (paired test), so they count as tied, and the tie-break took "
                               "the latest step. Its score ranks 2 of ")
    code = summarize(made).roles[1]
    assert (code.chosen, code.best, code.score, code.rank) == ("mid@300", "mid@300", 66.0, 2)
    assert [(t.other, t.beaten) for t in code.tests] == [("mid@200", False)]
