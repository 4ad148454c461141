"""Data mixtures: stages with token budgets, each a weighted set of named sources (YAML -> dataclasses).

A mixture file holds one or more stages; a train config lists mixture files in order (the card's run is
`openseek-mid-v1-stage1` then `openseek-mid-v1-stage2`). A source says where its text comes from with exactly one
of `files` (JSONL with a text field, parquet, plain text; globs), `hf` (a hub dataset, streamed; needs the network)
or `generator` (offline text: prose, math, code from `growth.tinytext`, or python-stdlib, the interpreter's own
source files), or `prepared` (Megatron indexed datasets tokenized elsewhere, by path prefix). The card's mixtures name datasets without locations: the train config's `data.sources` maps each
name to its data, e.g.

    data:
      mixtures: [openseek-mid-v1-stage1, openseek-mid-v1-stage2]
      sources:
        Nemotron-CC-v2-HQ-Syn: {files: ["/data/nemotron-cc-v2/hq-syn/*.parquet"]}

Weights are relative within a stage (the card's percentages); categories and dataset token counts are descriptive.
"""

from __future__ import annotations

import dataclasses
import glob
from dataclasses import dataclass, field
from pathlib import Path

from growth.foundation.config import build, load_yaml
from growth.foundation.errors import ConfigError, DataError
from growth.foundation.registry import Shipped

MIXTURES = Shipped("mixture", Path(__file__).with_name("mixtures"))
FORMATS = ("auto", "jsonl", "parquet", "text")
GENERATORS = ("prose", "math", "code", "python-stdlib")


@dataclass
class HFSource:
    dataset: str
    """Hub dataset id, streamed with `datasets.load_dataset(..., streaming=True)`."""
    config: str | None = None
    split: str = "train"


@dataclass
class SourceData:
    """Where a source's documents come from: exactly one of files, hf, generator."""

    files: list[str] = field(default_factory=list)
    """Paths or globs; relative paths resolve against the file that names them."""
    format: str = "auto"
    """auto (by extension: .jsonl/.json, .parquet, anything else is plain text), jsonl, parquet or text."""
    text_field: str = "text"
    """The JSONL key or parquet column holding the document text."""
    hf: HFSource | None = None
    generator: str | None = None
    """prose, math, code (growth.tinytext) or python-stdlib."""
    prepared: list[str] = field(default_factory=list)
    """Megatron indexed datasets already tokenized with the model's tokenizer: path prefixes (PREFIX.bin and
    PREFIX.idx), read in order as one stream, e.g. the `--output-prefix` of Megatron's preprocess_data.py."""

    def kinds(self) -> list[str]:
        return [k for k, v in (("files", self.files), ("hf", self.hf), ("generator", self.generator),
                               ("prepared", self.prepared)) if v]


@dataclass
class Source(SourceData):
    name: str = ""
    weight: float = 0.0
    """Sampling weight within the stage (relative; the card gives percentages)."""
    category: str = "other"
    """web, math, code, stem, multilingual, ... (reporting only)."""
    dataset_tokens_b: float | None = None
    """Size of the whole dataset in billions of tokens, as the card lists it (reporting only)."""
    note: str = ""


@dataclass
class Stage:
    name: str
    tokens: float
    """Token budget of this stage; the trainer switches stage once it has trained on the budget."""
    sources: list[Source]

    def __post_init__(self) -> None:
        if self.tokens <= 0:
            raise ConfigError(f"stage {self.name}: tokens must be positive, got {self.tokens}")
        if not self.sources:
            raise ConfigError(f"stage {self.name}: no sources")
        names = [s.name for s in self.sources]
        for s in self.sources:
            if not s.name:
                raise ConfigError(f"stage {self.name}: a source has no name")
            if names.count(s.name) > 1:
                raise ConfigError(f"stage {self.name}: source {s.name} is listed twice")
            if not s.weight > 0:
                raise ConfigError(f"stage {self.name}: source {s.name} has weight {s.weight}; weights must be > 0")

    def weights(self) -> dict[str, float]:
        total = sum(s.weight for s in self.sources)
        return {s.name: s.weight / total for s in self.sources}


@dataclass
class Mixture:
    name: str
    stages: list[Stage]
    description: str = ""


def load_mixture(name_or_path: str | Path) -> Mixture:
    """A shipped mixture by name (training/mixtures/) or a mixture YAML; its relative file paths resolve beside it."""
    path = MIXTURES.resolve(name_or_path)
    mixture = build(Mixture, load_yaml(path), where=str(path))
    for stage in mixture.stages:
        for s in stage.sources:
            s.files = [f if Path(f).is_absolute() else str(path.parent / f) for f in s.files]
    return mixture


def resolve_stages(names: list[str], sources: dict[str, SourceData], inputs: bool = True) -> list[Stage]:
    """Load the listed mixtures, apply the user's source mapping, and check every source has usable data (with
    `inputs` false, when a prepared directory supplies the data, only that each source's mapping is well formed)."""
    stages = [st for n in names for st in load_mixture(n).stages]
    if not stages:
        raise ConfigError("data.mixtures is empty; name at least one mixture")
    known = {s.name for st in stages for s in st.sources}
    extra = sorted(set(sources) - known)
    if extra:
        raise ConfigError(f"data.sources maps {', '.join(extra)}, which no stage uses")
    for stage in stages:
        for i, s in enumerate(stage.sources):
            if s.name in sources:
                mapped = sources[s.name]
                stage.sources[i] = s = dataclasses.replace(s, files=mapped.files, format=mapped.format,
                                                           text_field=mapped.text_field, hf=mapped.hf,
                                                           generator=mapped.generator, prepared=mapped.prepared)
            check_source(stage.name, s, inputs)
    return stages


def check_source(stage: str, s: Source, inputs: bool = True) -> None:
    kinds = s.kinds()
    if "/" in s.name or s.name.startswith("."):
        raise ConfigError(f"stage {stage}: source name {s.name!r} cannot name a folder (no '/', no leading '.')")
    if not kinds and inputs:
        raise DataError(f"stage {stage}: source {s.name} has no data; map it in the train config's data.sources "
                        f"(files, hf or generator)")
    if len(kinds) > 1:
        raise ConfigError(f"stage {stage}: source {s.name} sets {' and '.join(kinds)}; give exactly one")
    if s.format not in FORMATS:
        raise ConfigError(f"source {s.name}: format must be one of {FORMATS}, got {s.format!r}")
    if s.generator and s.generator not in GENERATORS:
        raise ConfigError(f"source {s.name}: generator must be one of {GENERATORS}, got {s.generator!r}")
    for pattern in s.files if inputs else []:
        if not glob.glob(pattern):
            raise DataError(f"stage {stage}: source {s.name}: no file matches {pattern}")
