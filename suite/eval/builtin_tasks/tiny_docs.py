"""Documents of the built-in tiny benchmarks, generated from growth.tinytext when lm-eval loads the task.

The tasks in this folder name these functions as `custom_dataset: !function tiny_docs.<fn>`; lm-eval 0.4.13 calls
them with the task's `metadata` mapping as keyword arguments (seed, test_docs, fewshot_docs from the YAML, plus
lm-eval's own version/config_source, which do not change the documents). Nothing is read from disk or the network,
so the suite runs on a fresh offline machine. Each function returns a DatasetDict with a `test` split (scored) and
a disjoint `train` split (the few-shot pool); documents are unique within and across the two splits and depend
only on (benchmark, seed, sizes) and growth.tinytext, so the same call always yields the same documents.
The text matches what the tiny training mixture is made of (tinytext prose/math/code), so a tiny model trained on
it can learn these tasks. A change to tinytext that alters the documents must bump the benchmarks' `version` in
suite/eval/suites/tiny-builtin.yaml (tests/suite/eval/test_builtin_suite.py pins a digest of the documents to catch it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import datasets

from growth import tinytext
from growth.foundation.errors import DataError

Doc = dict[str, Any]
_TRIES_PER_DOC = 50  # give up (DataError) when the generator cannot produce that many distinct documents


def _splits(kind: str, make: Callable[[random.Random], Doc], seed: int, test_docs: int,
            fewshot_docs: int) -> datasets.DatasetDict:
    rng = random.Random(f"growbench-builtin:{kind}:{seed}")
    wanted = int(test_docs) + int(fewshot_docs)
    seen: set[str] = set()
    docs: list[Doc] = []
    for _ in range(wanted * _TRIES_PER_DOC):
        if len(docs) == wanted:
            break
        doc = make(rng)
        key = json.dumps(doc, sort_keys=True)
        if key not in seen:
            seen.add(key)
            docs.append(doc)
    if len(docs) < wanted:
        raise DataError(f"built-in benchmark {kind}: only {len(docs)} distinct documents, {wanted} asked for "
                        "(lower test_docs/fewshot_docs in its task YAML)")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs[:int(test_docs)]),
                                 "train": datasets.Dataset.from_list(docs[int(test_docs):])})


def _choices(rng: random.Random, answer: Any, wrong: list[Any]) -> tuple[list[str], int]:
    """Three distinct wrong options plus the answer, shuffled; returns (choices, index of the answer)."""
    options = rng.sample(sorted({str(w) for w in wrong} - {str(answer)}), 3) + [str(answer)]
    rng.shuffle(options)
    return options, options.index(str(answer))


def arith_mc_doc(rng: random.Random) -> Doc:
    """A word problem cut just before the result of one of its steps (the sum or the share)."""
    f = tinytext.math_facts(rng)
    text = tinytext.math_text(f)
    if rng.random() < 0.5:
        cue, answer = f"{f.a} + {f.b} =", f.total
        wrong = [f.total - 1, f.total + 1, f.total - 10, f.total + 10, abs(f.a - f.b)]
    else:
        cue, answer = f"{f.total} // {f.c} =", f.share
        wrong = [f.share - 1, f.share + 1, f.share + 2, f.total % f.c, f.total]
    choices, label = _choices(rng, answer, [w for w in wrong if w >= 0])
    return {"context": text[:text.index(cue) + len(cue)], "choices": choices, "label": label}


def arith_gen_doc(rng: random.Random) -> Doc:
    """A word problem and its worked answer ending in "The answer is N." (tinytext's math format)."""
    question, answer = tinytext.math_problem(rng).removeprefix("Question: ").split("\nAnswer: ")
    return {"question": question, "answer": answer}


def cloze_doc(rng: random.Random) -> Doc:
    """Prose whose last sentence stops after its verb; the wrong endings break the sentence pattern."""
    lead = [" ".join(tinytext.sentence_parts(rng)) for _ in range(rng.randint(1, 3))]
    subject, verb, obj, tail = tinytext.sentence_parts(rng)
    other_subject, other_verb, _, _ = tinytext.sentence_parts(rng)
    wrong = [f"{tail.removesuffix('.')} {obj}.", f"{other_verb} {obj} {tail}", f"{other_subject.lower()} {tail}"]
    choices, label = _choices(rng, f"{obj} {tail}", wrong)
    return {"context": " ".join([*lead, f"{subject} {verb}"]), "choices": choices, "label": label}


def code_doc(rng: random.Random) -> Doc:
    """A tinytext function cut after `return`; the options are every body such a function can have."""
    head, _, rest = tinytext.code_snippet(rng).partition("    return ")
    body = rest.split("\n", 1)[0]
    return {"context": head + "    return", "choices": list(tinytext.FUNCTION_BODIES),
            "label": tinytext.FUNCTION_BODIES.index(body)}


def arith_mc(seed: int = 0, test_docs: int = 300, fewshot_docs: int = 50, **_: Any) -> datasets.DatasetDict:
    return _splits("arith_mc", arith_mc_doc, seed, test_docs, fewshot_docs)


def arith_gen(seed: int = 0, test_docs: int = 300, fewshot_docs: int = 50, **_: Any) -> datasets.DatasetDict:
    return _splits("arith_gen", arith_gen_doc, seed, test_docs, fewshot_docs)


def cloze(seed: int = 0, test_docs: int = 300, fewshot_docs: int = 50, **_: Any) -> datasets.DatasetDict:
    return _splits("cloze", cloze_doc, seed, test_docs, fewshot_docs)


def code(seed: int = 0, test_docs: int = 300, fewshot_docs: int = 50, **_: Any) -> datasets.DatasetDict:
    return _splits("code", code_doc, seed, test_docs, fewshot_docs)
