"""The built-in tiny suite: real lm-eval tasks over documents the package generates, scored offline with no mirror."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from growth import tinytext
from growth.foundation.errors import DataError
from suite.eval.benchmarks import load_suite
from suite.eval.builtin_tasks import tiny_docs
from suite.eval.tasks import TaskSource

GENERATORS = {"tiny_arith_mc": tiny_docs.arith_mc, "tiny_cloze": tiny_docs.cloze,
              "tiny_arith_gen": tiny_docs.arith_gen, "tiny_code": tiny_docs.code}
# sha256 of every document of the four benchmarks at their default sizes. If a change moves it, the documents
# changed: bump `version` of the affected benchmarks in suite/eval/suites/tiny-builtin.yaml, then update this value.
DOCS_SHA256 = "8190c42c47ecfe7d5ea92ca21266528552c22fb05f785cb3cf3388e930133c98"


def _docs(fn) -> dict[str, list[dict]]:
    return {split: list(ds) for split, ds in fn().items()}


def test_suite_loads_with_its_package_task_folder() -> None:
    suite = load_suite("tiny-builtin")
    assert suite.keys == list(GENERATORS)
    folder = Path(tiny_docs.__file__).parent
    assert all(b.include_paths == (folder,) and b.offline and not b.code for b in suite.benchmarks)
    assert [b.key for b in suite.benchmarks if b.in_avg_general] == ["tiny_arith_mc", "tiny_cloze"]
    assert suite.get("tiny_arith_gen").filter == "strict-match"


def test_documents_are_deterministic_unique_and_pinned() -> None:
    digest = hashlib.sha256()
    for key, fn in GENERATORS.items():
        docs = _docs(fn)
        assert docs == _docs(fn), key
        assert (len(docs["test"]), len(docs["train"])) == (300, 50)
        keys = [json.dumps(d, sort_keys=True) for d in docs["test"] + docs["train"]]
        assert len(set(keys)) == len(keys), f"{key}: duplicate documents or few-shot docs leaking into test"
        digest.update("\n".join(keys).encode())
    assert _docs(lambda: tiny_docs.cloze(seed=1))["test"] != _docs(tiny_docs.cloze)["test"]
    assert digest.hexdigest() == DOCS_SHA256


def test_documents_keep_the_training_texts_format() -> None:
    for doc in tiny_docs.arith_gen(test_docs=20, fewshot_docs=0)["test"]:
        assert doc["answer"].endswith(".") and " The answer is " in doc["answer"]
    for doc in tiny_docs.arith_mc(test_docs=40, fewshot_docs=0)["test"]:
        a, op, b = re.search(r"(\d+) (\+|//) (\d+) =$", doc["context"]).groups()
        assert int(doc["choices"][doc["label"]]) == (int(a) + int(b) if op == "+" else int(a) // int(b))
        assert len(set(doc["choices"])) == 4
    meaning = {"add": 10, "sub": 4, "mul": 21, "maximum": 7, "minimum": 3, "mean": 5}
    for doc in tiny_docs.code(test_docs=20, fewshot_docs=0)["test"]:
        kind = re.search(r"Return the (\w+) of", doc["context"]).group(1)
        assert eval(doc["choices"][doc["label"]], {"a": 7, "b": 3}) == meaning[kind]


def test_impossible_sizes_are_a_data_error() -> None:
    with pytest.raises(DataError, match="only 1 distinct documents, 3 asked for"):
        tiny_docs._splits("constant", lambda rng: {"text": "same"}, 0, 2, 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every benchmark built by lm-eval, once without a data mirror and once with an (empty) one set."""
    suite = load_suite("tiny-builtin")
    with TaskSource(list(suite.benchmarks), None) as plain, \
            TaskSource(list(suite.benchmarks), tmp_path_factory.mktemp("mirror")) as mirrored:
        return {key: (plain.build(key)[0], mirrored.build(key)[0]) for key in suite.keys}


def test_lm_eval_builds_the_generated_documents_with_or_without_a_mirror(built: dict) -> None:
    for key, (task, again) in built.items():
        docs = list(task.test_docs())
        assert docs == list(again.test_docs()) == _docs(GENERATORS[key])["test"]
        assert len(list(task.fewshot_docs())) == 50


def test_prompts_and_scoring_are_lm_evals(built: dict) -> None:
    from lm_eval.api.instance import Instance

    mc = built["tiny_arith_mc"][0]
    doc = next(iter(mc.test_docs()))
    assert mc.doc_to_text(doc) == doc["context"] and mc.doc_to_choice(doc) == doc["choices"]
    gen = built["tiny_arith_gen"][0]
    doc = tiny_docs.arith_gen_doc(random.Random(5))  # prompt + target is exactly the training text
    assert gen.doc_to_text(doc) + gen.config.target_delimiter + gen.doc_to_target(doc) == \
        tinytext.math_problem(random.Random(5))
    # The model writing the reference answer (tinytext's format) scores 1 under both filters; a wrong number 0.
    for completion, expected in ((" " + doc["answer"], 1.0), (" The answer is 9999.", 0.0)):
        for ensemble in gen._filters:
            inst = Instance("generate_until", doc, ("", {}), 0, resps=[completion])
            ensemble.apply([inst])
            assert gen.process_results(doc, [inst.filtered_resps[ensemble.name]]) == {"exact_match": expected}


def test_evaluate_offline_without_a_mirror(tiny_model: Path, store, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, no mirror: the generated suite runs; lm-eval's own files written beside it import back unchanged."""
    from suite.eval.evaluate import evaluate
    from suite.eval.ingest import ingest
    from suite.store import Store

    monkeypatch.delenv("GROWBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    results = evaluate(tiny_model, suite="tiny-builtin", limit=10, backend="hf", store=store, batch_size=16,
                       lm_eval_output=tmp_path / "lm-eval")
    assert [(r.benchmark, r.status, r.n) for r in results] == [(k, "finished", 10) for k in GENERATORS]
    assert all(0.0 <= r.score <= 1.0 for r in results)
    rows = store.query("SELECT task, metric, filter FROM scores WHERE is_primary ORDER BY task")
    assert rows.values.tolist() == [["tiny_arith_gen", "exact_match", "strict-match"], ["tiny_arith_mc", "acc", "none"],
                                    ["tiny_cloze", "acc_norm", "none"], ["tiny_code", "acc", "none"]]

    files = sorted((tmp_path / "lm-eval" / tiny_model.name).glob("results_*.json"))
    assert len(files) == 4 and not list((tmp_path / "lm-eval" / tiny_model.name).glob(".partial-*"))
    other = Store(tmp_path / "other.duckdb")
    report = ingest(files, str(tiny_model), suite="tiny-builtin", store=other)
    assert sorted(b for _, b, _, deviation in report.imported if deviation is None) == sorted(GENERATORS)
    values = "SELECT r.benchmark, v.task, v.doc_id, v.metric, v.filter, v.value FROM sample_scores v JOIN eval_runs r USING (run_id) " \
             "ORDER BY 1, 2, 3, 4, 5"
    ours, theirs = store.query(values), other.query(values)
    assert len(ours) >= 40 and ours.values.tolist() == theirs.values.tolist()
