"""The eval options are declared once: `growbench eval`/`sweep` flags are EvalOptions' (and Distribution's) fields,
each with its field's docstring as --help, and the flags build the object the command receives."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import typer
from typer.main import get_command
from typer.testing import CliRunner

from growth.foundation.config import field_docs
from suite.cli.app import app
from suite.cli.evaluate import EVAL_FLAGS
from suite.cli.options import takes
from suite.eval.options import Distribution, EvalOptions


def params(command: str) -> dict:
    return {p.name: p for p in get_command(app).commands[command].params}


def test_eval_and_sweep_flags_are_the_fields_with_their_docs() -> None:
    docs = field_docs(EvalOptions)
    for command in ("eval", "sweep"):
        found = params(command)
        for f in fields(EvalOptions):
            if f.name == "seed":  # not a flag: the evaluation seed stays as declared
                assert f.name not in found
                continue
            assert found[f.name].help == docs[f.name], (command, f.name)
        assert found["engine"].opts == ["--engine-arg"] and found["benchmarks"].opts == ["--benchmarks", "-b"]
        assert found["max_model_len"].help.startswith("Context window in tokens")
    found = params("sweep")
    for f in fields(Distribution):
        assert (f.name in found) == (f.name != "retries")
    assert found["ray_address"].opts == ["--ray-address"]
    assert found["workers"].help == field_docs(Distribution)["workers"]


def test_the_flags_build_the_options(tmp_path: Path) -> None:
    received = []
    toy = typer.Typer()

    @toy.command()
    @takes(EvalOptions, "opts", skip=("seed",), flags=EVAL_FLAGS)
    def command(*, opts: EvalOptions) -> None:
        received.append(opts)

    args = ["--suite", "tiny-builtin", "-b", "tiny_cloze,tiny_code", "--batch-size", "8", "--engine-arg",
            "max_num_seqs=4", "--max-model-len", "512", "--data-dir", str(tmp_path), "--limit", "3"]
    result = CliRunner().invoke(toy, args)
    assert result.exit_code == 0, result.output
    (opts,) = received
    assert opts.suite.name == "tiny-builtin" and opts.benchmarks == ("tiny_cloze", "tiny_code")
    assert opts.batch_size == 8 and opts.limit == 3 and opts.data_dir == tmp_path
    assert opts.engine == {"max_num_seqs": 4, "max_model_len": 512}
    assert CliRunner().invoke(toy, []).exit_code == 0
    assert received[-1] == EvalOptions(data_dir=received[-1].data_dir)  # flags left out: the declared defaults
