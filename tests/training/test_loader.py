"""The prepared-data loader as a function of the step: Megatron's blend (the rule against megatron-core's helper),
the same global batches for any world size, a fresh loader at step k equal to one that ran from step 0 (resume
without replay), a source continuing across the stage switch, epochs that visit every window once, exact realised
counts, and validation sequences that training never reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.blend import build_blend, next_source, normalized
from training.indexed import IndexedWriter
from training.loader import PreparedLoader
from training.mixture import resolve_stages
from training.prepared import PreparedSource, Shard, permute

SEQ = 16


def write_source(folder, name: str, docs: int, seed: int, shards: int = 2) -> list[str]:
    """A source of random documents (token ids offset by a per-source base, so rows name their source)."""
    rng = np.random.default_rng(seed)
    prefixes = []
    for k in range(shards):
        prefix = folder / name / f"shard-{k:05d}"
        writer = IndexedWriter(prefix, np.uint16)
        for _ in range(docs // shards):
            writer.add_document(seed * 1000 + rng.integers(0, 999, size=rng.integers(3, 30)))
        writer.commit()
        prefixes.append(str(prefix))
    return prefixes


@pytest.fixture
def run(tmp_path):
    """Two stages (a 3:1 b, then b 1:1 c) over three prepared sources; 8 sequences of 16 tokens per step."""
    mix = tmp_path / "mix.yaml"
    mix.write_text("name: m\nstages:\n"
                   "  - {name: one, tokens: 1536, sources: [{name: a, weight: 3}, {name: b, weight: 1}]}\n"
                   "  - {name: two, tokens: 1024, sources: [{name: b, weight: 1}, {name: c, weight: 1}]}\n")
    stages = resolve_stages([str(mix)], {}, inputs=False)
    prefixes = {name: write_source(tmp_path / "data", name, docs, seed)
                for name, docs, seed in (("a", 60, 1), ("b", 8, 2), ("c", 40, 3))}

    def loader(rank: int = 0, world: int = 1, held_out: int = 0, global_batch: int = 8) -> PreparedLoader:
        sources = {n: PreparedSource(n, [Shard(x) for x in p], SEQ, held_out, seed=5) for n, p in prefixes.items()}
        ends = [1536 // (SEQ * global_batch), 1536 // (SEQ * global_batch) + 1024 // (SEQ * global_batch)]
        return PreparedLoader(stages, sources, SEQ, global_batch, ends, tmp_path / "cache", 5, rank, world)

    return loader


def test_blend_rule_is_megatrons():
    from training.mixture import load_mixture

    card = [s.weight for s in load_mixture("openseek-mid-v1-stage1").stages[0].sources]
    for weights in ([3, 1], [0.5, 0.3, 0.2], [1, 1, 1, 1], card):
        index, position = build_blend(weights, 3000)
        w, counts, ours, positions = normalized(weights), [0] * len(weights), [], []
        for _ in range(3000):
            k = next_source(w, counts)
            ours.append(k)
            positions.append(counts[k])
            counts[k] += 1
        assert ours == index.tolist() and positions == position.tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_permute_is_a_bijection(n):
    for key in ("0:a:0", "0:a:1", "7:other:3"):
        out = permute(np.arange(n), n, key)
        assert sorted(out.tolist()) == list(range(n))
    if n > 8:
        assert permute(np.arange(n), n, "0:a:0").tolist() != permute(np.arange(n), n, "0:a:1").tolist()


def test_every_world_size_sees_the_same_global_batches(run):
    one = run()
    for world in (2, 4):
        ranks = [run(rank, world) for rank in range(world)]
        for step in range(one.ends[-1]):
            assert torch.equal(torch.cat([r.batch(step) for r in ranks]), one.batch(step))


def test_a_fresh_loader_at_step_k_continues_bit_for_bit(run):
    straight = run()
    expected = [straight.batch(step) for step in range(straight.ends[-1])]
    for k in (0, 3, straight.ends[0], straight.ends[-1] - 1):
        resumed = run()  # a new process: opens the cached blend, replays nothing
        resumed.load_state_dict(straight.state_dict())
        for step in range(k, straight.ends[-1]):
            assert torch.equal(resumed.batch(step), expected[step])
    assert run(global_batch=4).fingerprint != straight.fingerprint


def test_source_in_both_stages_continues_and_epochs_cover_every_window(run):
    loader = run()
    b = loader.sources["b"]
    rows = torch.cat([loader.batch(step) for step in range(loader.ends[-1])])
    mine = rows[(rows[:, 0] >= 2000) & (rows[:, 0] < 3000)]  # b's ids are 2000..2998
    drawn = int(loader.blends[0].counts[1] + loader.blends[1].counts[0])
    assert len(mine) == drawn > b.windows  # b is small: the run takes it through more than one epoch
    expected = np.empty((drawn, SEQ), dtype=np.int64)
    b.samples(np.arange(drawn), expected)  # b's sample stream 0, 1, 2, ... across both stages, in order
    assert torch.equal(mine, torch.from_numpy(expected))
    windows = b.window_of(np.arange(2 * b.windows))
    assert sorted(windows[:b.windows].tolist()) == sorted(windows[b.windows:].tolist()) == list(range(b.windows))
    assert windows[:b.windows].tolist() != windows[b.windows:].tolist()


def test_realised_counts_are_exact(run):
    loader = run()
    for step in range(loader.ends[-1]):
        stage = 0 if step < loader.ends[0] else 1
        first = (step - (loader.ends[0] if stage else 0) + 1) * loader.global_batch
        expected = np.bincount(loader.blends[stage].sources(0, first), minlength=2)
        assert loader.stage_counts(step).tolist() == expected.tolist()
    shares = loader.tokens_by_source(loader.ends[0])
    assert shares[0] == {"a": 72 * SEQ, "b": 24 * SEQ} and shares[1] == {"b": 0, "c": 0}


def test_validation_sequences_are_never_trained_on(run):
    loader = run(held_out=2)
    for name, source in loader.sources.items():
        assert source.num_tokens - source.train_tokens >= 2 * SEQ
        starts = np.concatenate([source.offsets[k] + source.dataset(k).starts() for k in range(len(source.shards))])
        assert source.train_tokens in starts  # the held-out tail begins at a document
        assert source.windows * SEQ <= source.train_tokens
        held = loader.validation()[name]
        assert held.shape == (2, SEQ)
        assert torch.equal(held[0], torch.from_numpy(source.tokens(source.train_tokens,
                                                                   source.train_tokens + SEQ).astype(np.int32)))


def test_the_planner_says_when_the_on_the_fly_path_cannot_feed_the_gpus():
    from pathlib import Path

    from growth.grow import plan_growth, read_config_file
    from training.loader import on_the_fly_note
    from training.throughput import planned_step_seconds

    seed = read_config_file(Path(__file__).resolve().parents[2] / "growth/plans/qwen3-4b-base.config.json")
    grown = plan_growth(seed, "openseek-mid-v1").final.config
    step = {w: planned_step_seconds(grown, 8192, 2048 * 8192, w) for w in (64, 256)}
    assert step[256] == pytest.approx(13.9, abs=0.05) and step[64] == pytest.approx(4 * step[256])
    note = on_the_fly_note(2048 * 8192, 256, step[256])
    assert "every one of the 256 ranks tokenizes all 16,777,216 tokens" in note and "growbench data prepare" in note
    assert on_the_fly_note(8 * 128, 1, 0.5) is None  # the tiny default: 1,024 tokens a step
