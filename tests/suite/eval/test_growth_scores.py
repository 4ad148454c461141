"""Measured, not assumed: function preservation shown on benchmark scores through the real evaluator.

The README claims the growth operators untie, width with HyperCloning noise and identity depth preserve the
function (tests/growth check the logits). Here the claim is checked where it matters to a user: the tiny model and
its function-preserving grow are evaluated on every tiny-builtin benchmark with lm-eval, and every stored score,
and every stored per-document value, is equal; the card's copy-depth grow, evaluated the same way, changes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PLAN = """name: {name}
steps:
  - op: untie
  - {{op: width, intermediate_size: 512, snr_db: 10, noise: hypercloning}}
  - {{op: depth, start: 1, end: 3, init: {init}}}
"""
LIMIT = 40  # documents per benchmark: every benchmark, 4 x 40 documents per model


def grown(seed: Path, root: Path, init: str) -> Path:
    from growth.grow import grow

    plan = root / f"{init}.yaml"
    plan.write_text(PLAN.format(name=f"preserve-{init}", init=init))
    return grow(seed, root / f"grown-{init}", plan).path


def scores_and_values(store, model: Path) -> dict[str, tuple[float, list[float]]]:
    """Per benchmark: the stored headline score and the stored per-document headline values, in document order."""
    from suite.eval.benchmarks import load_suite
    from suite.eval.evaluate import evaluate
    from suite.eval.paired_runs import BenchmarkSamples

    results = evaluate(model, suite="tiny-builtin", limit=LIMIT, backend="hf", store=store, batch_size=16)
    assert {r.status for r in results} == {"finished"}, [(r.benchmark, r.error) for r in results]
    suite = load_suite("tiny-builtin")
    out = {}
    with store.connect(read_only=True) as con:
        for r in results:
            frame = BenchmarkSamples.load(con, suite.get(r.benchmark), [r.run_id]).frame
            values = frame.sort_values(["task", "doc_id"])["value"].tolist()
            assert len(values) == LIMIT, r.benchmark  # every document's value is stored
            out[r.benchmark] = (r.score, values)
    return out


@pytest.mark.slow
def test_function_preserving_grow_leaves_every_score_unchanged_and_copy_depth_does_not(
        tiny_model: Path, tmp_path: Path, store) -> None:
    seed = scores_and_values(store, tiny_model)
    preserved = scores_and_values(store, grown(tiny_model, tmp_path, "identity"))
    copied = scores_and_values(store, grown(tiny_model, tmp_path, "copy"))
    assert set(seed) == {"tiny_arith_mc", "tiny_cloze", "tiny_arith_gen", "tiny_code"}
    for key, (score, values) in seed.items():
        assert preserved[key] == (score, values), key  # the headline and every document, exactly
    changed = [key for key in seed if copied[key][1] != seed[key][1]]
    assert changed, "copy-depth growth changed no document's result"
    assert any(copied[key][0] != seed[key][0] for key in changed)
