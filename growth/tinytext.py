"""Offline text, generated from a seed: what tiny tokenizers are trained on and tiny models are trained with.

Nothing here reads the network. Three kinds of text, matching the card's mixture categories at toy scale:
`prose` (web-like sentences), `math` (arithmetic word problems with worked answers, GSM8K-shaped) and `code` (small
Python functions). `python_stdlib_files` lists the interpreter's own source files as a larger code corpus.
"""

from __future__ import annotations

import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_NAMES = ["Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Iris", "Jack", "Kai", "Lena", "Maya", "Noah"]
_ITEMS = ["apples", "books", "coins", "marbles", "pencils", "stamps", "cookies", "shells", "cards", "stickers"]
_SUBJECTS = ["The river", "A scientist", "The old library", "Every student", "The small village", "A careful reader",
             "The market", "Our teacher", "The northern forest", "A young engineer", "The museum", "The committee"]
_VERBS = ["describes", "changes", "protects", "measures", "explains", "follows", "builds", "remembers", "reveals",
          "questions", "supports", "connects"]
_OBJECTS = ["the history of the region", "a simple theory of light", "the price of bread", "an ancient map",
            "the results of the experiment", "a quiet path through the hills", "the rules of the game",
            "the structure of the cell", "a letter from a friend", "the cost of energy", "the shape of the coast"]
_TAILS = ["because the evidence was clear.", "after a long winter.", "with great patience.", "in the early morning.",
          "before anyone else noticed.", "as the data suggested.", "while the city slept.", "for the first time."]
_FUNCS = [("add", "a + b"), ("sub", "a - b"), ("mul", "a * b"), ("maximum", "a if a > b else b"),
          ("minimum", "a if a < b else b"), ("mean", "(a + b) / 2")]


def sentence_parts(rng: random.Random) -> tuple[str, str, str, str]:
    """One prose sentence as (subject, verb, object, tail); the built-in cloze benchmark cuts sentences here."""
    return rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_TAILS)


def prose(rng: random.Random) -> str:
    return " ".join(" ".join(sentence_parts(rng)) for _ in range(rng.randint(2, 5)))


@dataclass(frozen=True)
class MathFacts:
    """The numbers behind one word problem, so benchmarks can ask about its steps without parsing text."""

    name: str
    item: str
    a: int
    b: int
    c: int

    @property
    def total(self) -> int:
        return self.a + self.b

    @property
    def share(self) -> int:
        return self.total // self.c


def math_facts(rng: random.Random) -> MathFacts:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    return MathFacts(name, item, rng.randint(2, 60), rng.randint(2, 40), rng.randint(2, 9))


def math_text(f: MathFacts) -> str:
    return (f"Question: {f.name} has {f.a} {f.item} and finds {f.b} more. {f.name} then shares them equally among "
            f"{f.c} friends and keeps the rest. How many {f.item} does each friend get?\n"
            f"Answer: {f.name} has {f.a} + {f.b} = {f.total} {f.item}. Each friend gets {f.total} // {f.c} = "
            f"{f.share}. The answer is {f.share}.")


def math_problem(rng: random.Random) -> str:
    return math_text(math_facts(rng))


FUNCTION_BODIES = tuple(expr for _, expr in _FUNCS)  # every body a code_snippet function can have


def code_snippet(rng: random.Random) -> str:
    fname, expr = rng.choice(_FUNCS)
    name = f"{fname}_{rng.randint(0, 999)}"
    x, y = rng.randint(0, 99), rng.randint(0, 99)
    return (f"def {name}(a, b):\n    \"\"\"Return the {fname} of a and b.\"\"\"\n    return {expr}\n\n\n"
            f"print({name}({x}, {y}))\n")


GENERATORS = {"prose": prose, "math": math_problem, "code": code_snippet}


def documents(kind: str, seed: int, count: int | None = None) -> Iterator[str]:
    """Yield `count` documents of one kind (forever when None), reproducibly from `seed`."""
    gen = GENERATORS[kind]
    rng = random.Random(f"{kind}:{seed}")
    n = 0
    while count is None or n < count:
        yield gen(rng)
        n += 1


def tokenizer_corpus(seed: int = 0, per_kind: int = 3000) -> list[str]:
    """A fixed, mixed corpus for training tiny BPE tokenizers."""
    return [doc for kind in sorted(GENERATORS) for doc in documents(kind, seed, per_kind)]


def python_stdlib_files(limit: int | None = None) -> list[Path]:
    """The running interpreter's own standard-library sources, sorted: real code available on every machine."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    return files[:limit] if limit else files
