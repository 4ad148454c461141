"""Noise-aware anchors: a role's best checkpoint is taken only when it beats the others beyond noise; otherwise the
recipe's tie-break decides, and the recipe's evidence says which rule did and with what p-value."""

from __future__ import annotations

from pathlib import Path

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
    no per-document values, 0.60 +- 0.01 / 0.59 +- 0.01 / 0.50 +- 0.01 (stderr z-test)."""
    root = tmp_path_factory.mktemp("noise")
    store = Store(root / "results.duckdb")
    (root / "run" / "checkpoints").mkdir(parents=True)
    good, weak = binary_pair(12, 1, 20, 7)
    close, _ = binary_pair(1, 0, 20, 19)  # 21 of 40 right
    code = {100: binary_pair(8, 2, 30, 10)[0], 200: binary_pair(8, 2, 30, 10)[1], 300: [1] * 33 + [0] * 17}
    for step, cloze, arith in ((100, good, 0.60), (200, weak, 0.59), (300, close, 0.50)):
        path = variant(tiny_model, root / "run" / "checkpoints", f"step-{step:06d}",
                       training={"run_id": "mid", "step": step, "tokens": step * 1000, "stage": 1})
        model_id = store.register_model(path)
        add_sampled_run(store, model_id, "tiny_cloze", [cloze], metric="acc_norm")
        add_sampled_run(store, model_id, "tiny_code", [code[step]])
        add_run(store, model_id, "tiny_arith_mc", arith, 0.01, suite=SUITE)
    return store, root / "run"


def choose(setup: tuple[Store, Path], tmp_path: Path, roles: list[dict], **extra) -> list:
    store, run = setup
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump({"roles": roles, **extra}))
    return select(store, find_candidates(store, run=run), "anchors", SelectOptions(suite=SUITE, config=path)).models


def test_the_best_is_taken_only_beyond_noise(setup, tmp_path: Path) -> None:
    [cloze] = choose(setup, tmp_path, [{"role": "prose", "metric": "tiny_cloze", "weight": 1}])
    assert cloze.name == "mid@100"
    assert cloze.evidence["test"] == "mcnemar-exact" and cloze.evidence["p_value"] == pytest.approx(28 / 8192)
    assert cloze.evidence["decided_by"].startswith("beats every other free checkpoint beyond noise")


def test_within_noise_the_tie_break_decides_and_says_so(setup, tmp_path: Path) -> None:
    [code] = choose(setup, tmp_path, [{"role": "code", "metric": "tiny_code", "weight": 1}])
    # 0.76 vs the runner-up 0.66: 7 documents only step 100 solves, 2 only step 300: p = 2 (1 + 9 + 36) / 2^9;
    # 0.76 vs 0.64 (8 against 2): p = 0.109. All three are within noise: the latest, step 300, ranked second
    assert code.name == "mid@300" and code.evidence["rank"] == 2
    assert code.evidence["runner_up"] == "mid@300" and code.evidence["p_value"] == 92 / 512
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


def test_noise_settings_are_checked(setup, tmp_path: Path) -> None:
    role = [{"role": "code", "metric": "tiny_code", "weight": 1}]
    with pytest.raises(ConfigError, match="tie_break must be one of later, earlier, value"):
        choose(setup, tmp_path, role, tie_break="newest")
    with pytest.raises(ConfigError, match="noise.alpha must be a number between 0 and 1"):
        choose(setup, tmp_path, role, noise={"alpha": 5})
    with pytest.raises(ConfigError, match="noise.test must be one of paired, stderr, none"):
        choose(setup, tmp_path, role, noise={"test": "t"})
