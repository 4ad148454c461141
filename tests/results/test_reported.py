"""Reported scores: the YAML transcription equals the card's table, value by value, and bad files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from growth.foundation.errors import ConfigError
from results.leaderboard import build_leaderboard
from results.leaderboard_format import to_markdown
from results.reported_scores import REPORTED_DIR, load_reported

CARD = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "openseek-mid-v1-card.md"


@pytest.fixture(scope="module")
def card_table() -> list[str]:
    """The card's evaluation table, as its markdown lines (header through Avg All)."""
    if not CARD.is_file():
        pytest.skip(f"reference card {CARD} not present")
    lines = CARD.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Benchmark |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _number(cell: str) -> float:
    return float(re.sub(r"\*|</?u>", "", cell))


def test_every_value_matches_the_card(card_table: list[str]) -> None:
    reported = load_reported("openseek-mid-v1")
    header = [re.sub(r"\*", "", c) for c in _cells(card_table[0])[1:]]
    assert [m.name for m in reported.models] == header
    tokens = [c.strip("*") for c in _cells(card_table[2])[1:]]
    assert [m.training_tokens for m in reported.models] == tokens
    body = [_cells(line) for line in card_table[3:] if _cells(line)[0]]
    score_rows = [c for c in body if not c[0].startswith("**")]
    assert [r.title for r in reported.rows] == [c[0] for c in score_rows]
    for row, cells in zip(reported.rows, score_rows):
        shots, cot = re.search(r"\((\d+)-shot( CoT)?\)", cells[0]).groups()
        assert (row.shots, row.cot) == (int(shots), cot is not None), row.key
        assert [row.scores[m] for m in header] == [_number(c) for c in cells[1:]], row.key
    averages = {c[0].strip("*"): [_number(v) for v in c[1:]] for c in body if c[0].startswith("**")}
    assert {a.name: [a.printed[m] for m in header] for a in reported.averages} == averages
    assert reported.subject == "OpenSeek-Mid-v1" and reported.source["url"].startswith("https://huggingface.co/")


def test_average_definitions_are_the_cards() -> None:
    reported = load_reported("openseek-mid-v1")
    keys = [r.key for r in reported.rows]
    assert keys == ["mmlu", "mmlu_pro", "agieval_en", "bbh", "hellaswag", "winogrande", "piqa", "openbookqa",
                    "arc_challenge", "gsm8k", "math", "gpqa_diamond", "mbpp", "evalplus"]
    general, everything = reported.averages
    assert (general.name, list(general.benchmarks)) == ("Avg General", keys[:9])
    assert (everything.name, list(everything.benchmarks)) == ("Avg All", keys)


def test_leaderboard_reproduces_the_card_table_exactly(card_table: list[str]) -> None:
    """Every score, average (2 decimals), bold and underline, including the tie for second on GPQA."""
    lb = build_leaderboard(None, reported=load_reported("openseek-mid-v1"))
    text = to_markdown(lb)
    assert [line for line in text.splitlines() if line.startswith("|")] == card_table
    gpqa = next(r for r in lb.rows if r.key == "gpqa_diamond")
    assert gpqa.marks == [None, None, "second", None, None, "second", "best"]


def test_card_table_is_unchanged_by_significance_marks(card_table: list[str]) -> None:
    """Reported scores carry no uncertainty, so significance marks equal the card's own on its table."""
    value = build_leaderboard(None, reported=load_reported("openseek-mid-v1"))
    significance = build_leaderboard(None, reported=load_reported("openseek-mid-v1"), marks="significance")
    assert [r.marks for r in significance.rows] == [r.marks for r in value.rows]
    assert [line for line in to_markdown(value).splitlines() if line.startswith("|")] == card_table


def test_averages_are_recomputed_and_the_cards_inconsistencies_are_noted() -> None:
    """The card's Avg General for Nemotron-12B and Gemma3-12B is the mean of 12 rows, not of the 9 it names."""
    reported = load_reported("openseek-mid-v1")
    lb = build_leaderboard(None, reported=reported, suite=None)
    general = [r for r in reported.rows][:9]
    for model in reported.models:
        mean9 = sum(r.scores[model.name] for r in general) / 9
        mean14 = sum(r.scores[model.name] for r in reported.rows) / 14
        assert round(mean14, 2) == reported.averages[1].printed[model.name], model.name
        consistent = round(mean9, 2) == reported.averages[0].printed[model.name]
        assert consistent == (model.name not in ("Nemotron-12B", "Gemma3-12B")), model.name
        if not consistent:
            mean12 = sum(r.scores[model.name] for r in reported.rows[:12]) / 12
            assert round(mean12, 2) == reported.averages[0].printed[model.name]
            assert any(model.name in n and f"{mean9:.2f}" in n for n in lb.notes)
    assert len(lb.notes) == 2


def _write(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((REPORTED_DIR / "openseek-mid-v1.yaml").read_text())
    edit(data)
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(colour="red"), "unknown key"),
    (lambda d: d["benchmarks"][0].update(scores=[1.0, 2.0]), "expected a list of 7 values"),
    (lambda d: d["benchmarks"][1]["scores"].__setitem__(0, 150), "must be a number in 0..100"),
    (lambda d: d["benchmarks"][2].update(shots="five"), "benchmarks[2].shots: expected int, got 'five'"),
    (lambda d: d["benchmarks"][2].update(shots=-1), "shots must be a non-negative integer"),
    (lambda d: d["benchmarks"][3].pop("metric"), "benchmarks[3]: missing required key(s) metric"),
    (lambda d: d["benchmarks"].append(d["benchmarks"][0]), "distinct keys"),
    (lambda d: d.update(subject="GPT-9"), "subject 'GPT-9' is not one of the models"),
    (lambda d: d["averages"][0]["benchmarks"].append("mmlu_redux"), "mmlu_redux have no row"),
    (lambda d: d["averages"][1]["printed"].__setitem__(2, None), "must be a number in 0..100, got None"),
])
def test_invalid_files_are_refused(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_reported(_write(tmp_path, edit))


def test_a_set_missing_a_suite_benchmark_is_refused(tmp_path: Path) -> None:
    reported = load_reported(_write(tmp_path, lambda d: d.update(benchmarks=d["benchmarks"][:-1],
                                                                 averages=[])))
    with pytest.raises(ConfigError, match="missing benchmark.*evalplus of suite openseek-mid-v1"):
        reported.require([r.key for r in load_reported("openseek-mid-v1").rows], "openseek-mid-v1")


def test_user_sets_extend_the_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def other_card(d: dict) -> None:
        d.update(name="my-card", subject="Mine", averages=[],
                 models=[{"name": "Mine", "training_tokens": "1T"}],
                 benchmarks=[dict(b, scores=[None if b["key"] == "gsm8k" else 50.0]) for b in d["benchmarks"]])

    path = _write(tmp_path, other_card)
    path.rename(tmp_path / "my-card.yaml")
    monkeypatch.setenv("GROWBENCH_REPORTED_DIR", str(tmp_path))
    mine = load_reported("my-card")
    assert mine.row("gsm8k").scores == {"Mine": None} and mine.row("mmlu").scores == {"Mine": 50.0}
    text = to_markdown(build_leaderboard(None, reported=mine, suite=None))
    assert "| GSM8K (4-shot CoT) | — |" in text and "— marks a missing score" in text
    with pytest.raises(ConfigError, match="unknown reported set 'my-crad'. Did you mean my-card"):
        load_reported("my-crad")
    with pytest.raises(ConfigError, match="no model 'Mien'; did you mean Mine"):
        mine.model("Mien")


def test_rows_agree_with_the_suite_definition() -> None:
    """Titles, shots and metrics of the card's rows are those the openseek-mid-v1 suite evaluates with."""
    from suite.eval.benchmarks import load_suite

    suite = load_suite("openseek-mid-v1")
    reported = load_reported("openseek-mid-v1")
    assert [r.key for r in reported.rows] == suite.keys
    for row in reported.rows:
        bench = suite.get(row.key)
        assert (row.title, row.shots, row.metric) == (bench.title, bench.num_fewshot, bench.metric), row.key
    assert list(reported.averages[0].benchmarks) == [b.key for b in suite.benchmarks if b.in_avg_general]
