"""The store's schema: one migration per version, applied in order by `Store` when it first writes a file.

Tables (query them with plain SQL, see README):
  models(model_id, name, path, kind, parents, growth, training_run, step, tokens, merge, meta, registered_at)
  eval_runs(run_id, model_id, benchmark, suite, config_hash, config, lm_eval_version, backend, dtype, limit_n,
            num_fewshot, seed, started_at, finished_at, status, error, owner, traceback, heartbeat_at, deviation)
  scores(run_id, task, metric, filter, value, stderr, n, is_primary)
  samples(run_id, task, doc_id, data)
  merge_candidates(candidate_key, members, weights, dev, model_id, score, scores, created_at)
  sample_scores(run_id, task, part, doc_id, metric, filter, value)
"""

# Each entry upgrades the schema by one version; never edit a shipped entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE models (
        model_id TEXT PRIMARY KEY, name TEXT, path TEXT, kind TEXT, parents JSON, growth JSON,
        training_run TEXT, step BIGINT, tokens BIGINT, merge JSON, meta JSON, registered_at TIMESTAMP);
    CREATE TABLE eval_runs (
        run_id TEXT PRIMARY KEY, model_id TEXT, benchmark TEXT, suite TEXT, config_hash TEXT, config JSON,
        lm_eval_version TEXT, backend TEXT, dtype TEXT, limit_n BIGINT, num_fewshot INTEGER, seed INTEGER,
        started_at TIMESTAMP, finished_at TIMESTAMP, status TEXT, error TEXT);
    CREATE TABLE scores (
        run_id TEXT, task TEXT, metric TEXT, filter TEXT, value DOUBLE, stderr DOUBLE, n BIGINT, is_primary BOOLEAN);
    CREATE TABLE samples (run_id TEXT, task TEXT, doc_id BIGINT, data JSON);
    """,
    # 2: the selector's cache of merge candidates (suite/select/strategies/candidates.py): one row per (members, weights,
    # dev-eval config), so a re-run of greedy-soup or search reuses every candidate already merged and evaluated.
    """
    CREATE TABLE merge_candidates (
        candidate_key TEXT PRIMARY KEY, members JSON, weights JSON, dev JSON, model_id TEXT, score DOUBLE,
        scores JSON, created_at TIMESTAMP);
    """,
    # 3: who runs a 'running' row (host:pid), so a re-run can tell a live claim from a killed process's leftover
    # (suite/store/claims.py).
    "ALTER TABLE eval_runs ADD COLUMN owner TEXT;",
    # 4: the full traceback of a failed run beside its one-line `error`, so no failure is reduced to a line and lost.
    "ALTER TABLE eval_runs ADD COLUMN traceback TEXT;",
    # 5: every run's per-document metric values, compactly (numbers only; `samples` keeps full outputs when asked),
    # so two models can be compared document by document (suite/store/samples.py, suite/eval/paired_runs.py). `part`
    # is the index of the benchmark's task entry the document's lm-eval task belongs to.
    """
    CREATE TABLE sample_scores (
        run_id TEXT, task TEXT, part INTEGER, doc_id BIGINT, metric TEXT, filter TEXT, value DOUBLE);
    """,
    # 6: a running row's heartbeat (its owner refreshes it; a stale one is taken over from any host), and why an
    # imported run's task settings differ from its suite's (NULL when they match; flagged in the leaderboard).
    "ALTER TABLE eval_runs ADD COLUMN heartbeat_at TIMESTAMP; ALTER TABLE eval_runs ADD COLUMN deviation TEXT;",
    # 7: the scratch merges greedy-soup and search evaluate on the dev split (suite/select/strategies/candidates.py) are
    # kind 'candidate', so leaderboards, reports and name globs leave them out; those registered before as 'merged'
    # (a scratch folder candidate-<key> with a row in merge_candidates) become 'candidate' too.
    "UPDATE models SET kind = 'candidate' WHERE kind = 'merged' AND regexp_matches(path, 'candidate-[0-9a-f]{16}$') "
    "AND model_id IN (SELECT model_id FROM merge_candidates);",
]
