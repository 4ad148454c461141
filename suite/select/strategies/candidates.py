"""Score a weighted merge of candidates on the dev split for real, cached in DuckDB so re-runs reuse the work.

greedy-soup and search both ask "how good is this mix?". The answer is a real merge (growth.merge) written to
a scratch folder, a real limited evaluation (suite.eval.evaluate) on the dev benchmarks, and the mean of their
primary scores. Each answer is stored in `merge_candidates` keyed by the members' fingerprints, the weights
and the dev config, so running the same selection again merges and evaluates nothing. A single checkpoint at
weight 1 is evaluated as it is, without a merge.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growth.foundation.errors import BackendError
from growth.merge.execute import plan_merge, run_merge
from growth.merge.recipe import MergeRecipe, ModelEntry
from suite.select.selector import Candidate, SelectContext
from suite.select.strategies.options import DevConfig


@dataclass
class Scored:
    score: float
    scores: dict[str, float]
    model_id: str
    cached: bool
    runs: dict[str, str] = field(default_factory=dict)  # benchmark -> the dev run behind its score
    stderrs: dict[str, float | None] = field(default_factory=dict)


def dev_config(ctx: SelectContext, dev: DevConfig) -> DevConfig:
    """The dev split in effect: the strategy's YAML, then --limit / --backend; benchmarks default to the
    suite's offline, non-code "Avg General" benchmarks."""
    benchmarks = dev.benchmarks
    if benchmarks is None:
        benchmarks = [b.key for b in ctx.options.suite.benchmarks if b.in_avg_general and b.offline and not b.code]
    return DevConfig(benchmarks=list(benchmarks), limit=ctx.options.limit or dev.limit,
                     backend=ctx.options.backend or dev.backend)


class CandidateScorer:
    def __init__(self, ctx: SelectContext, dev: DevConfig) -> None:
        self.ctx = ctx
        self.dev = dev
        self.work = ctx.options.work_dir or ctx.store.path.parent / "candidates"

    def record(self) -> dict[str, Any]:
        return {"suite": self.ctx.options.suite.name, "benchmarks": self.dev.benchmarks, "limit": self.dev.limit,
                "backend": self.dev.backend}

    def split(self) -> dict[str, Any]:
        """Which documents the dev scores rest on, for the recipe and the report."""
        first = f"the first {self.dev.limit}" if self.dev.limit else "all"
        return {"kind": "dev split", "suite": self.ctx.options.suite.name, "benchmarks": self.dev.benchmarks,
                "limit": self.dev.limit,
                "note": f"{first} documents of each dev benchmark (lm-eval --limit): a subset of the documents the "
                        "leaderboard shows, not held out from them"}

    def key(self, members: list[Candidate], weights: list[float]) -> str:
        mix = sorted((m.model_id, round(w, 6)) for m, w in zip(members, weights))
        return hashlib.sha256(json.dumps([mix, self.record()], sort_keys=True).encode()).hexdigest()[:16]

    def score(self, members: list[Candidate], weights: list[float]) -> Scored:
        """The dev score of this mix (weights need not be normalised; zero weights are dropped)."""
        total = sum(weights)
        pairs = [(m, w / total) for m, w in zip(members, weights) if w > 0]
        members, weights = [m for m, _ in pairs], [w for _, w in pairs]
        key = self.key(members, weights)
        cached = self.ctx.store.cached_candidate(key)
        if cached is not None:
            from suite.store.samples import latest_runs

            score, scores, model_id = cached
            with self.ctx.store.connect(read_only=True) as con:
                runs = latest_runs(con, model_id, self.ctx.options.suite.name, self.dev.benchmarks,
                                   self.dev.limit)
            return Scored(score, scores, model_id, cached=True, runs={k: r for k, (r, _) in runs.items()},
                          stderrs={k: e for k, (_, e) in runs.items()})
        scored = self._evaluate(members, weights, key)
        self.ctx.store.cache_candidate(key, [m.model_id for m in members], weights, self.record(), scored.model_id,
                                       scored.score, scored.scores)
        return scored

    def _evaluate(self, members: list[Candidate], weights: list[float], key: str) -> Scored:
        from suite.eval.evaluate import evaluate

        scratch = None
        if len(members) == 1:
            path, model_id = Path(members[0].path), members[0].model_id
        else:
            recipe = MergeRecipe(models=[ModelEntry(m.path, {"weight": w}, name=m.name)
                                         for m, w in zip(members, weights)], name=f"candidate-{key}")
            scratch = run_merge(plan_merge(recipe), self.work / f"candidate-{key}", force=True)
            path, model_id = scratch, self.ctx.store.register_model(scratch, kind="candidate")
        try:
            options, dev = self.ctx.options, self.dev
            results = evaluate(path, store=self.ctx.store, suite=options.suite, benchmarks=dev.benchmarks,
                               limit=dev.limit, backend=dev.backend, data_dir=options.data_dir,
                               allow_code_execution=options.allow_code_execution, model_id=model_id)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        scores = {r.benchmark: r.score for r in results
                  if r.status in ("finished", "skipped") and r.score is not None}
        failed = next((r for r in results if r.benchmark not in scores), None)
        if failed is not None:
            raise BackendError(f"dev evaluation of {path} on {failed.benchmark} {failed.status}: "
                               f"{failed.error}")
        return Scored(sum(scores.values()) / len(scores), scores, model_id, cached=False,
                      runs={r.benchmark: r.run_id for r in results},
                      stderrs={r.benchmark: r.stderr for r in results})
