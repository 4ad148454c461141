"""The tiny-model factory: a complete, offline Qwen3ForCausalLM checkpoint from a seed.

Every test builds its models here, and so does the embedded tiny pipeline. The weights are drawn per tensor from a
generator seeded by (seed, tensor name), so the same arguments give byte-identical safetensors whatever the
transformers version's own init order. The tokenizer is a byte-level BPE trained locally on `growth.tinytext`.
The default geometry keeps head_dim >= 32, which vLLM's CPU attention requires.

`random_init` draws the same way for any Qwen3 config.json and takes its tokenizer from another checkpoint: a growth
study's scratch control, the grown architecture from random init (suite/study/).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from growth.checkpoint import Checkpoint, CheckpointWriter, TensorSpec, parse_dtype
from growth.foundation.errors import ConfigError
from growth.tinytext import tokenizer_corpus

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    layers: int = 4
    hidden: int = 128
    ffn: int = 256
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    vocab: int = 1024
    seed: int = 0
    tied: bool = True
    dtype: str = "float32"
    shard_size: int | None = None  # bytes per shard; None writes one file
    max_positions: int = 8192

    def __post_init__(self) -> None:
        for field in ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab"):
            if getattr(self, field) < 1:
                raise ConfigError(f"--{field.replace('_', '-')} must be positive")
        if self.heads % self.kv_heads:
            raise ConfigError(f"--heads ({self.heads}) must be a multiple of --kv-heads ({self.kv_heads})")
        if self.vocab < 300:
            raise ConfigError("--vocab must be at least 300 (256 byte tokens plus merges and special tokens)")
        parse_dtype(self.dtype)


def qwen3_config(spec: TinySpec, eos_id: int, pad_id: int) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": spec.hidden,
        "intermediate_size": spec.ffn,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab,
        "max_position_embeddings": spec.max_positions,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": spec.tied,
        "use_cache": True,
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": spec.layers,
        "layer_types": ["full_attention"] * spec.layers,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "dtype": str(parse_dtype(spec.dtype)).removeprefix("torch."),
    }


def qwen3_tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Qwen3 checkpoint as transformers saves it (no lm_head when tied)."""
    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    d, nq, nkv = config["head_dim"], config["num_attention_heads"], config["num_key_value_heads"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (nq * d, h),
            p + "self_attn.k_proj.weight": (nkv * d, h),
            p + "self_attn.v_proj.weight": (nkv * d, h),
            p + "self_attn.o_proj.weight": (h, nq * d),
            p + "self_attn.q_norm.weight": (d,),
            p + "self_attn.k_norm.weight": (d,),
            p + "post_attention_layernorm.weight": (h,),
            p + "mlp.gate_proj.weight": (f, h),
            p + "mlp.up_proj.weight": (f, h),
            p + "mlp.down_proj.weight": (h, f),
        })
    shapes["model.norm.weight"] = (h,)
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    return shapes


def init_tensor(name: str, shape: tuple[int, ...], seed: int, std: float = 0.02) -> torch.Tensor:
    """Norm weights are ones; everything else is N(0, std) from a generator seeded by (seed, name)."""
    if len(shape) == 1:
        return torch.ones(shape)
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    return torch.randn(shape, generator=gen) * std


def train_tokenizer(vocab: int, out: Path) -> tuple[int, int]:
    """Train a byte-level BPE on the offline corpus and save it with transformers; returns (eos_id, pad_id)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   model_max_length=8192)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    eos = tok.token_to_id("<|endoftext|>")
    return eos, eos


def make_tiny(out: str | Path, spec: TinySpec = TinySpec(), *, force: bool = False) -> Path:
    """Write a complete tiny Qwen3 checkpoint to `out` (atomically) and return its path."""
    dtype = parse_dtype(spec.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        eos, pad = train_tokenizer(spec.vocab, Path(tmp))
        config = qwen3_config(spec, eos, pad)
        shapes = qwen3_tensor_shapes(config)
        specs = [TensorSpec(n, s, dtype) for n, s in shapes.items()]
        max_shard = spec.shard_size or 2**62
        with CheckpointWriter(out, specs, max_shard_bytes=max_shard, force=force) as w:
            for s in specs:
                w.add(s.name, init_tensor(s.name, s.shape, spec.seed).to(dtype))
            w.write_config(config)
            w.write_json("generation_config.json", {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": pad,
                                                    "do_sample": False})
            w.write_json("fixture.json", asdict(spec))
            for f in Path(tmp).iterdir():
                (w.path / f.name).write_bytes(f.read_bytes())
            return w.commit()


def random_init(out: str | Path, config: dict[str, Any], tokenizer_from: str | Path, seed: int = 0, *,
                force: bool = False) -> Path:
    """A Qwen3 checkpoint of `config` with seeded random weights (norms 1, the rest N(0, initializer_range)), written
    tensor by tensor, with the tokenizer and generation files of checkpoint `tokenizer_from`."""
    if config.get("model_type") != "qwen3":
        raise ConfigError(f"random init builds qwen3 models; this config's model_type is {config.get('model_type')!r}")
    source = Checkpoint.open(tokenizer_from)
    dtype = parse_dtype(str(config.get("dtype") or config.get("torch_dtype") or "float32"))
    specs = [TensorSpec(n, s, dtype) for n, s in qwen3_tensor_shapes(config).items()]
    std = float(config.get("initializer_range", 0.02))
    with CheckpointWriter(out, specs, force=force) as w:
        for spec in specs:
            w.add(spec.name, init_tensor(spec.name, spec.shape, seed, std).to(dtype))
        w.write_config(config)
        w.copy_aux_from(source, exclude=("fixture.json",))
        return w.commit()
