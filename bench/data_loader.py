"""Feeding the card's run: on-the-fly packing against prepared data, per rank, at the card's geometry.

    python -m bench.data_loader                  # ~10 minutes on the 2-core VM (2.5 GB of blend cache in a temp dir)
    python -m bench.data_loader --repeat 5 --corpus-mb 24 --out report.json
    python -m bench.data_loader --quick          # a small corpus and the tiny mixture: a smoke run in a minute

Everything is generated here, nothing is downloaded: the corpus is one JSONL file of real text (the interpreter's
standard-library sources, the benchmark mirror's text fields when /work/shared/benchmarks exists, then generated
prose and math to fill), tokenized with growth.fixture's tokenizer (a byte-level BPE of 1,024 tokens, as in the
issue's measurements). The card's geometry: seq_len 8192, micro_batch 1, global batch 2048 sequences, the card's two
mixture stages (43 and 45 sources, 81,063 + 41,724 steps); each card source reads the prepared corpus under its own
sample order. Four measurements, in one run:

(a) data time per rank per step. On the fly: every rank packs the whole global batch (training/data.py), measured
    on `--fly-sequences` sequences and scaled to 2048. Prepared: `PreparedLoader.batch(step)` of one rank at 64 and
    256 ranks (32 and 8 sequences), at steps spread over both stages, without the prefetch thread (what the loop would
    wait with nothing to overlap). Target: <= 2% of the planner's GPU step time (training.throughput: the grown
    10.61B model's FLOPs at 40% MFU of an H100's 989 TFLOP/s).
(b) resume at step 10 and at step 100,000 (stage 2). Prepared: a fresh loader (every source opened, the cached
    blends mapped, the fingerprint checked), the step's batch and the realised mixture counts; interleaved, best of
    N. Target: <= 2 s and within 10% of step 10. On the fly: the documents a resume replays (tokens consumed / the
    corpus's tokens per document) at the measured replay rate.
(c) prepare throughput, tokens/s: `training.prepare.prepare` with 1 and 2 workers into fresh folders, against the
    bare tokenizer (the same batches encoded the same way, training.prepare.encoder, nothing read or written) in
    1 and 2 forked processes: the 2-process bare rate is what the machine's cores give this work at that moment, the
    control for prepare's 2 workers. All four interleaved, best of N, with CPU seconds and the load average of
    every round. Target: 2 workers >= 1.6x one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
CARD_MIXTURES = ["openseek-mid-v1-stage1", "openseek-mid-v1-stage2"]
SEQ_LEN, GLOBAL_BATCH = 8192, 2048


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (prepare's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def write_corpus(path: Path, megabytes: float) -> int:
    """One JSONL of real text, about `megabytes` MB; returns its document count."""
    from growth.tinytext import documents, python_stdlib_files

    budget, n = int(megabytes * 1e6), 0
    with open(path, "w") as f:
        def add(text: str) -> bool:
            nonlocal budget, n
            f.write(json.dumps({"text": text}) + "\n")
            budget -= len(text)
            n += 1
            return budget > 0

        for p in python_stdlib_files():
            if not add(p.read_text(errors="replace")):
                return n
        for p in sorted(BENCHMARKS.rglob("*.jsonl")) if BENCHMARKS.is_dir() else []:
            for line in p.read_text(errors="replace").splitlines():
                row = json.loads(line)
                text = "\n".join(str(v) for v in row.values() if isinstance(v, str))
                if text and not add(text):
                    return n
        prose, maths = documents("prose", 0), documents("math", 0)
        while add("\n".join(next(prose) for _ in range(20)) + "\n\n" + next(maths)):
            pass
    return n


def bench_config(work: Path, model: Path, mixtures: list[str], sources: dict) -> Path:
    path = work / f"config-{len(list(work.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump({"model": str(model), "run_dir": str(work / "run"), "seq_len": SEQ_LEN,
                                    "global_batch": GLOBAL_BATCH, "data": {"mixtures": mixtures, "sources": sources}}))
    return path


def _encode_all(encode, texts: list[str]) -> int:
    """Tokens of `texts` encoded in prepare's batches (training.prepare.BATCH_BYTES), nothing read or written."""
    from training.prepare import BATCH_BYTES

    count, batch, size = 0, [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= BATCH_BYTES or len(batch) >= 4096:
            count += sum(map(len, encode(batch)))
            batch, size = [], 0
    return count + (sum(map(len, encode(batch))) if batch else 0)


def bare_tokenizer(encode, texts: list[str], processes: int) -> tuple[float, float, int]:
    """(wall s, CPU s, tokens) of encoding `texts` in `processes` forked processes, each a contiguous share: the
    machine's own parallel rate for this work at this moment, the control for prepare's workers."""
    import multiprocessing as mp

    _SHARED.update(encode=encode, texts=texts)  # forked processes inherit them; only index ranges are sent
    t, c = time.perf_counter(), cpu_seconds()
    if processes == 1:
        count = _encode_all(encode, texts)
    else:
        step = -(-len(texts) // processes)
        with mp.get_context("fork").Pool(processes) as pool:
            count = sum(pool.map(_encode_range, [(i, i + step) for i in range(0, len(texts), step)]))
    return time.perf_counter() - t, cpu_seconds() - c, count


_SHARED: dict = {}


def _encode_range(bounds: tuple[int, int]) -> int:
    return _encode_all(_SHARED["encode"], _SHARED["texts"][bounds[0]:bounds[1]])


def prepare_rounds(work: Path, config_path: Path, repeat: int, shard_size: int, texts: list[str]) -> dict:
    """(c): prepare with 1 and 2 workers and the bare tokenizer in 1 and 2 processes, interleaved, best of `repeat`."""
    from transformers import AutoTokenizer

    from training.config import load_config
    from training.prepare import encoder, prepare

    config = load_config(config_path)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    encode = encoder(AutoTokenizer.from_pretrained(config.model))
    times: dict[str, list[float]] = {k: [] for k in ("bare", "bare2", "1", "2")}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    tokens = count = 0
    rounds = []
    for r in range(repeat):
        for processes in (1, 2) if r % 2 == 0 else (2, 1):
            wall, used, count = bare_tokenizer(encode, texts, processes)
            key = "bare" if processes == 1 else "bare2"
            times[key].append(wall)
            cpu[key].append(used)
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            out = work / f"prepared-{workers}-{r}"
            t, c = time.perf_counter(), cpu_seconds()
            summary = prepare(config, out, workers=workers, shard_size=shard_size)
            times[str(workers)].append(time.perf_counter() - t)
            cpu[str(workers)].append(cpu_seconds() - c)
            tokens = summary.tokens
            if r < repeat - 1 or workers == 2:
                shutil.rmtree(out)
        rounds.append({"round": r, "load": load(), **{k: v[-1] for k, v in times.items()},
                       **{f"cpu_{k}": v[-1] for k, v in cpu.items()}})
        print(f"  prepare round {r}: bare tokenizer 1 / 2 processes {times['bare'][-1]:.1f} / "
              f"{times['bare2'][-1]:.1f} s, prepare 1 / 2 workers {times['1'][-1]:.1f} / {times['2'][-1]:.1f} s; "
              f"CPU {' / '.join(f'{cpu[k][-1]:.1f}' for k in times)} s (load {load()})", flush=True)
    (work / f"prepared-1-{repeat - 1}").rename(work / "prepared")
    return {"tokens": tokens, "bare_tokens": count, "documents": summary.sources[0].documents, "rounds": rounds,
            "best": {k: min(v) for k, v in times.items()}, "cpu_best": {k: min(v) for k, v in cpu.items()},
            "rate": {k: (count if k.startswith("bare") else tokens) / min(v) for k, v in times.items()}}


def on_the_fly(config_path: Path, sequences: int, replay_docs: int) -> dict:
    """(a) and (b) for the on-the-fly path: packing rate at seq_len 8192, and the replay rate of a resume."""
    from transformers import AutoTokenizer

    from training.config import load_config
    from training.data import MixtureLoader, TokenStream
    from training.mixture import resolve_stages

    config = load_config(config_path)
    stages = resolve_stages(config.data.mixtures, config.data.sources)
    tok = AutoTokenizer.from_pretrained(config.model)
    loader = MixtureLoader(stages, tok, SEQ_LEN, 0)
    loader.batch(0, 2)  # opens the first streams
    t = time.perf_counter()
    loader.batch(0, sequences)
    pack_s = time.perf_counter() - t
    stream = TokenStream(stages[0].sources[0], tok, 0)
    t = time.perf_counter()
    stream.load_state_dict({"documents": replay_docs, "buffer": []})
    replay_s = time.perf_counter() - t
    return {"sequences": sequences, "pack_s": pack_s, "tokens_per_s": sequences * SEQ_LEN / pack_s,
            "replay_docs": replay_docs, "replay_docs_per_s": replay_docs / replay_s}


def prepared_loader(shards: list, model_config: dict, cache: Path, steps_to_time: int, repeat: int) -> dict:
    """(a) and (b) for prepared data at the card's geometry."""
    from training.loader import PreparedLoader
    from training.mixture import SourceData, resolve_stages
    from training.prepared import PreparedSource
    from training.throughput import planned_step_seconds
    from training.trainer import stage_steps

    stages = resolve_stages(CARD_MIXTURES, {s.name: SourceData(prepared=[shard.prefix for shard in shards])
                                            for st in resolve_stages(CARD_MIXTURES, {}, inputs=False)
                                            for s in st.sources}, inputs=False)
    ends = stage_steps(stages, SEQ_LEN * GLOBAL_BATCH)
    names = sorted({s.name for st in stages for s in st.sources})

    def open_loader(rank: int = 0, world: int = 1) -> PreparedLoader:
        sources = {n: PreparedSource(n, shards, SEQ_LEN, 0, seed=0) for n in names}
        return PreparedLoader(stages, sources, SEQ_LEN, GLOBAL_BATCH, ends, cache, 0, rank, world)

    t = time.perf_counter()
    first = open_loader()
    build_s = time.perf_counter() - t
    cache_bytes = sum(p.stat().st_size for p in cache.iterdir())
    rng = random.Random(0)
    steps = sorted(rng.randrange(ends[-1]) for _ in range(steps_to_time))
    per_world = {}
    for world in (64, 256):
        loader = open_loader(world // 2, world)
        loader.batch(steps[0])
        seconds = []
        for step in steps:
            t = time.perf_counter()
            batch = loader.batch(step)
            seconds.append(time.perf_counter() - t)
        assert batch.shape == (GLOBAL_BATCH // world, SEQ_LEN)
        gpu_s = planned_step_seconds(model_config, SEQ_LEN, SEQ_LEN * GLOBAL_BATCH, world)
        per_world[world] = {"median_s": statistics.median(seconds), "max_s": max(seconds), "gpu_step_s": gpu_s,
                            "steps": len(steps)}
    resume: dict[int, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in (10, 100_000)}
    state = first.state_dict()
    for _ in range(repeat):
        for step in resume:
            t, c = time.perf_counter(), time.thread_time()
            loader = open_loader(0, 256)
            loader.load_state_dict(state)
            loader.batch(step)
            loader.tokens_by_source(step)
            resume[step]["cpu"].append(time.thread_time() - c)
            resume[step]["wall"].append(time.perf_counter() - t)
    return {"ends": ends, "blend_build_s": build_s, "cache_bytes": cache_bytes, "per_world": per_world,
            "resume": {k: {"best_s": min(v["wall"]), "median_s": statistics.median(v["wall"]),
                           "cpu_best_s": min(v["cpu"]), "rounds": repeat} for k, v in resume.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of the interleaved timings (best of N).")
    parser.add_argument("--corpus-mb", type=float, default=12.0, help="Size of the generated JSONL corpus.")
    parser.add_argument("--shard-size", default="1MiB", help="Prepare's input bytes per shard.")
    parser.add_argument("--fly-sequences", type=int, default=8, help="On-the-fly sequences of 8192 tokens timed.")
    parser.add_argument("--quick", action="store_true", help="Small corpus, tiny mixture, one round: a smoke run.")
    parser.add_argument("--out", type=Path, help="Also write the measurements as JSON here.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temp folder).")
    args = parser.parse_args(argv)
    from growth.fixture import make_tiny
    from growth.foundation.units import parse_bytes
    from growth.grow import plan_growth, read_config_file
    from training.mixture import resolve_stages
    from training.prepared import Shard

    start, load_start = time.perf_counter(), load()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = make_tiny(work / "tiny", force=True)
        corpus = work / "corpus.jsonl"
        docs = write_corpus(corpus, 1.0 if args.quick else args.corpus_mb)
        texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
        mix = work / "corpus-mix.yaml"
        mix.write_text(yaml.safe_dump({"name": "corpus", "stages": [{"name": "s", "tokens": 1e6, "sources": [
            {"name": "corpus", "weight": 1, "files": [str(corpus)]}]}]}))
        print(f"corpus: {docs:,} documents, {corpus.stat().st_size / 1e6:.1f} MB; load {load()}", flush=True)
        prep = prepare_rounds(work, bench_config(work, model, [str(mix)], {}), 1 if args.quick else args.repeat,
                              parse_bytes(args.shard_size), texts)
        manifest = json.loads((work / "prepared" / "manifest.json").read_text())
        entry = manifest["sources"]["corpus"]
        tokens_per_doc = entry["tokens"] / entry["documents"]
        shards = [Shard(str(work / "prepared" / s["prefix"]), s["tokens"], s["documents"], s["bin"], s["idx"])
                  for s in entry["shards"]]
        card_sources = {s.name: {"files": [str(corpus)]} for st in resolve_stages(CARD_MIXTURES, {}, inputs=False)
                        for s in st.sources}
        fly = on_the_fly(bench_config(work, model, CARD_MIXTURES, card_sources), 2 if args.quick else
                         args.fly_sequences, 2000 if args.quick else 20000)
        grown = plan_growth(read_config_file(Path(__file__).resolve().parents[1] / "growth" / "plans" /
                                             "qwen3-4b-base.config.json"), "openseek-mid-v1").final.config
        loader = prepared_loader(shards, grown, work / "cache", 5 if args.quick else 40, 3 if args.quick else 20)
        report = {"corpus": {"documents": docs, "bytes": corpus.stat().st_size, "tokens": prep["tokens"],
                             "tokens_per_document": tokens_per_doc},
                  "prepare": prep, "on_the_fly": fly, "prepared": loader, "load": {"start": load_start, "end": load()},
                  "seconds": time.perf_counter() - start, "quick": args.quick}
        print_table(report)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
        return report
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def print_table(r: dict) -> None:
    fly, prep, pl = r["on_the_fly"], r["prepare"], r["prepared"]
    per_step_fly = GLOBAL_BATCH * SEQ_LEN / fly["tokens_per_s"]
    print(f"\nbench.data_loader: seq_len {SEQ_LEN}, micro_batch 1, {GLOBAL_BATCH} sequences per step; corpus "
          f"{r['corpus']['bytes'] / 1e6:.1f} MB, {r['corpus']['tokens']:,} tokens "
          f"({r['corpus']['tokens_per_document']:.0f} per document); load average {r['load']['start']} at the start, "
          f"{r['load']['end']} at the end; {r['seconds']:.0f} s\n")
    print("| per rank, per step | 64 ranks | 256 ranks |")
    print("|---|---:|---:|")
    w64, w256 = pl["per_world"][64], pl["per_world"][256]
    print(f"| planner's GPU step (40% MFU, 989 TFLOP/s) | {w64['gpu_step_s']:.1f} s | {w256['gpu_step_s']:.1f} s |")
    print(f"| 2% of it (target) | {0.02 * w64['gpu_step_s'] * 1e3:.0f} ms | {0.02 * w256['gpu_step_s'] * 1e3:.0f} ms |")
    print(f"| on the fly: every rank packs the global batch ({fly['tokens_per_s'] / 1e6:.2f}M tokens/s, "
          f"{fly['sequences']} sequences timed) | {per_step_fly:.0f} s ({per_step_fly / w64['gpu_step_s']:.0%}) | "
          f"{per_step_fly:.0f} s ({per_step_fly / w256['gpu_step_s']:.0%}) |")
    for key, label in (("median_s", "median"), ("max_s", "max")):
        print(f"| prepared: this rank's sequences, {label} of {w64['steps']} steps | {w64[key] * 1e3:.2f} ms "
              f"({w64[key] / w64['gpu_step_s']:.4%}) | {w256[key] * 1e3:.2f} ms ({w256[key] / w256['gpu_step_s']:.4%}) |")
    ok = w256["max_s"] <= 0.02 * w256["gpu_step_s"]
    print(f"\nprepared data at 256 ranks: {'meets' if ok else 'MISSES'} <= 2% of the GPU step (max over the steps).")

    res = pl["resume"]
    docs_at = {s: s * GLOBAL_BATCH * SEQ_LEN / r["corpus"]["tokens_per_document"] for s in (10, 100_000)}
    print("\n| resume | at step 10 | at step 100,000 |")
    print("|---|---:|---:|")
    print(f"| prepared: a fresh loader, its first batch and realised shares, wall best / median of "
          f"{res[10]['rounds']} | {res[10]['best_s'] * 1e3:.1f} / {res[10]['median_s'] * 1e3:.1f} ms | "
          f"{res[100_000]['best_s'] * 1e3:.1f} / {res[100_000]['median_s'] * 1e3:.1f} ms |")
    print(f"| prepared: the same, CPU time of the thread (best) | {res[10]['cpu_best_s'] * 1e3:.1f} ms | "
          f"{res[100_000]['cpu_best_s'] * 1e3:.1f} ms |")
    print(f"| on the fly (replays {fly['replay_docs_per_s']:,.0f} documents/s, extrapolated) | "
          f"{docs_at[10] / fly['replay_docs_per_s']:,.0f} s | {docs_at[100_000] / fly['replay_docs_per_s'] / 3600:,.0f} h |")
    ratio = res[100_000]["best_s"] / res[10]["best_s"]
    print(f"\nprepared resume at step 100,000: {res[100_000]['best_s']:.3f} s (target <= 2 s), {ratio:.2f}x step 10 "
          f"in wall time, {res[100_000]['cpu_best_s'] / res[10]['cpu_best_s']:.2f}x in CPU time (target <= 1.10); "
          f"blend index for both stages built once in {pl['blend_build_s']:.0f} s, "
          f"{pl['cache_bytes'] / 1e9:.2f} GB cached.")

    rate = prep["rate"]
    cpu = prep["cpu_best"]
    print("\n| tokenizing the corpus | tokens/s (wall, best) | vs bare tokenizer, 1 process | 2 vs 1 | CPU s (best) "
          "| tokens per CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = (("bare", "bare tokenizer, 1 process (nothing read or written)", None),
            ("bare2", "bare tokenizer, 2 forked processes (the machine's parallel rate now)", "bare"),
            ("1", "prepare, 1 worker", None), ("2", "prepare, 2 workers", "1"))
    for key, label, base in rows:
        n = prep["bare_tokens"] if key.startswith("bare") else prep["tokens"]
        print(f"| {label} | {rate[key] / 1e6:.3f}M | {rate[key] / rate['bare']:.2f}x | "
              f"{f'{rate[key] / rate[base]:.2f}x' if base else ''} | {cpu[key]:.1f} | {n / cpu[key] / 1e6:.2f}M |")
    print(f"\nprepare with 2 workers: {rate['2'] / rate['1']:.2f}x one worker (target >= 1.6x), while the bare "
          f"tokenizer got {rate['bare2'] / rate['bare']:.2f}x from 2 processes on this machine in the same rounds; best "
          f"of {len(prep['rounds'])} interleaved rounds, load averages per round: "
          f"{'; '.join(x['load'] for x in prep['rounds'])}.")

if __name__ == "__main__":
    main()
