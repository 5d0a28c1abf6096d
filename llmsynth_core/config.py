"""Experiment configuration: one frozen model per stage, composed into one experiment.

Semantic settings change results and are hashed; runtime settings (concurrency, timeouts,
progress display) are not; secrets never live here, only the *name* of the variable that
holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from llmsynth_core.db_url import check_state_db_url, redact
from llmsynth_core.errors import ConfigError, validated
from llmsynth_core.hashing import stable_hash
from llmsynth_core.size_matching import SizePolicy

Mode = Literal["zero_shot", "few_shot"]
PromptStyle = Literal["chat", "completion"]
HttpClient = Literal["aiohttp", "httpx"]  # the openai SDK's two HTTP clients
ALL_MODES: tuple[Mode, ...] = ("zero_shot", "few_shot")
EMBEDDED_LLMS = ("smollm2-135m-instruct", "gemma3-270m")
EMBEDDED_ENCODER = "embedded:all-MiniLM-L6-v2"
# Prices say what a request costs, not what it returns: excluded from every hash.
PRICE_FIELDS = frozenset({"input_price_per_mtok", "output_price_per_mtok", "batch_price_factor"})
# The Batch API discount most OpenAI-compatible providers give (OpenAI: half price).
DEFAULT_BATCH_PRICE_FACTOR = 0.5
# Redacted before it is checked: pydantic's errors (and Prefect's parameter errors) quote the
# value that failed, which is then the placeholder, never the password.
StateDbUrl = Annotated[str, AfterValidator(check_state_db_url), BeforeValidator(redact)]


class _Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LLMConfig(_Stage):
    """Which model generates, and how it is sampled."""

    endpoint: str = Field(
        default="embedded",
        description="'embedded' starts llama.cpp locally; otherwise an OpenAI-compatible base "
        "URL such as https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (vLLM, Ollama).",
    )
    embedded_model: Literal["smollm2-135m-instruct", "gemma3-270m"] = Field(
        default="smollm2-135m-instruct",
        description="Model the embedded llama.cpp server loads (endpoint='embedded' only).",
    )
    model: str = Field(
        default="smollm2-135m-instruct",
        description="Model id sent with every request.",
    )
    prompt_style: PromptStyle = Field(
        default="chat", description="'chat' for instruction models, 'completion' for base models."
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key).",
    )
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=96, ge=8, le=4096)
    seed: int = 0
    input_price_per_mtok: float = Field(
        default=0.0, ge=0.0, description="USD per million prompt tokens (embedded models: 0)."
    )
    output_price_per_mtok: float = Field(
        default=0.0, ge=0.0, description="USD per million completion tokens (embedded models: 0)."
    )
    batch_price_factor: float = Field(
        default=DEFAULT_BATCH_PRICE_FACTOR,
        gt=0.0,
        le=1.0,
        description="What a reply through the endpoint's Batch API (runtime.batch) costs, as a "
        "share of the prices above.",
    )

    @property
    def is_embedded(self) -> bool:
        return self.endpoint == "embedded"

    def prices(self) -> dict[str, Any]:
        """The prices per million tokens and the batch factor, as manifests record them beside
        a cost."""
        return {name: getattr(self, name) for name in sorted(PRICE_FIELDS)}

    @model_serializer(mode="wrap")
    def _omit_default_batch_factor(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Hashes leave prices out, but a few keys hash a whole AnalysisConfig, annotator_llm
        # included (diversity_key): at its default the factor dumps as if it did not exist, so
        # those keys stay where they were before the field was added.
        data: dict[str, Any] = handler(self)
        if self.batch_price_factor == DEFAULT_BATCH_PRICE_FACTOR:
            data.pop("batch_price_factor", None)
        return data

    def reply_dict(self) -> dict[str, Any]:
        """The settings that decide what the model replies: for cache keys. Where it is served,
        the key's variable name and the prices do not."""
        return self.model_dump(mode="json", exclude={"endpoint", "api_key_env", *PRICE_FIELDS})


class GenerationConfig(_Stage):
    """How much synthetic data to make and how the study's prompting is applied."""

    modes: list[Mode] = Field(default_factory=lambda: list(ALL_MODES), min_length=1)
    per_label: int = Field(default=24, ge=1, description="Accepted examples wanted per label.")
    diversity_every: int = Field(
        default=5, ge=1, description="n: after every n generations, ask for more diversity."
    )
    conversation_length: int = Field(
        default=10, ge=1, description="Zero-shot requests per chat conversation before a fresh one."
    )
    history_turns: int = Field(
        default=4, ge=0, description="Earlier turns kept in a zero-shot conversation."
    )
    few_shot_k: int = Field(default=3, ge=1, description="k real examples shown per request.")
    few_shot_max_chars: int = Field(
        default=600, ge=50, description="Shown examples are cut to this many characters."
    )
    max_attempts_factor: float = Field(
        default=3.0, ge=1.0, description="Stop a label after per_label * factor requests."
    )
    replicates: int = Field(
        default=1,
        ge=1,
        description="k independent synthetic sets per task and mode, replicate r generated "
        "with llm.seed + r; each trains its own models, so the gap's interval covers "
        "generation randomness too.",
    )
    on_truncated: Literal["drop", "trim"] = Field(
        default="trim",
        description="A reply cut off at max_tokens: 'trim' keeps it up to its last full "
        "sentence (dropped if none), 'drop' rejects it.",
    )
    min_chars: int = Field(default=12, ge=1, description="Shorter cleaned replies are dropped.")
    max_chars: int = Field(default=1200, ge=20, description="Longer cleaned replies are dropped.")
    near_duplicate_jaccard: float | None = Field(
        # One changed word in a 15-word sentence leaves a word-trigram Jaccard of about 0.63.
        default=0.6,
        gt=0.0,
        le=1.0,
        description="Drop a reply whose word-trigram Jaccard similarity to an accepted one of "
        "the same label reaches this (null: exact duplicates only).",
    )
    copy_containment: float | None = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description="Few-shot: drop a reply when this share of its word trigrams appears in "
        "one of the examples it was shown (null: keep copies).",
    )

    @field_validator("modes")
    @classmethod
    def _unique_modes(cls, modes: list[Mode]) -> list[Mode]:
        if len(set(modes)) != len(modes):
            raise ValueError("modes must be unique; remove the repeated entry")
        return modes


class Mixture(_Stage):
    """A training source of real and synthetic rows together, at a given size per label."""

    mode: Mode = Field(default="few_shot", description="Which synthetic data is mixed in.")
    real_per_label: int = Field(ge=1, description="Real training rows per label.")
    synthetic_per_label: int | None = Field(
        default=None,
        ge=1,
        description="Synthetic rows per label (seeded sample of the accepted rows; null: all).",
    )

    @property
    def name(self) -> str:
        synthetic = "all" if self.synthetic_per_label is None else self.synthetic_per_label
        return f"{self.mode}+real{self.real_per_label}x{synthetic}"


class TrainingConfig(_Stage):
    """Fine-tuning an encoder classifier."""

    models: list[str] = Field(
        default_factory=lambda: [EMBEDDED_ENCODER],
        min_length=1,
        description="Encoders fine-tuned separately: 'embedded:all-MiniLM-L6-v2', a local "
        "checkpoint directory, or a hub id such as bert-base-uncased (needs a local copy or "
        "hub access).",
    )
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_length: int = Field(default=128, ge=8, le=4096)
    seeds: list[int] = Field(
        default_factory=lambda: [42, 43, 44],
        min_length=1,
        description="One model per seed and data source (the seed also draws the real "
        "subsample and the validation carve); several seeds give mean, std and a 95% "
        "bootstrap confidence interval.",
    )
    max_steps: int | None = Field(default=None, ge=1, description="Cap on optimizer steps.")
    validation_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=0.5,
        description="Share of each label's training rows held out (seeded) as a validation "
        "split for early stopping; 0 = no validation split.",
    )
    min_validation_per_label: int = Field(
        default=5,
        ge=1,
        description="Carve no validation split (and so stop no run early) when the fraction "
        "would hold out fewer rows than this for some label: a handful of rows makes early "
        "stopping a coin toss.",
    )
    early_stopping_patience: int | None = Field(
        default=2,
        ge=1,
        description="Stop after this many epochs without a better validation Macro-F1 and "
        "keep the best epoch's weights (null: train all epochs).",
    )
    size_matching: SizePolicy = Field(
        default="equal",
        description="'equal': per label, the real source and every mode train on the same "
        "count, the minimum of generation.per_label, the real rows and each mode's accepted "
        "rows (a mixture's synthetic part follows it); 'none': real takes up to per_label rows "
        "per label and each mode all it accepted, so sources differ in size.",
    )
    mixtures: list[Mixture] = Field(
        default_factory=list,
        description="Extra data sources that add synthetic rows to a small real set (the "
        "study's augmentation experiment), e.g. {mode: few_shot, real_per_label: 10}.",
    )
    real_curve: list[int] = Field(
        default_factory=list,
        description="Real rows per label of each point of the real learning curve, e.g. "
        "[2, 4, 8, 16, 32]: one extra real-data model per point, encoder and seed, from which "
        "the analysis reads how many real labels each synthetic set is worth (empty: no "
        "curve). A point above a label's real rows trains on all of them.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="'auto' and 'bf16': bf16 autocast where the device computes bf16 natively "
        "(CUDA with bf16, CPUs with AVX512-BF16/AMX), fp32 master weights; 'fp32': never.",
    )
    save_models: bool = Field(
        default=True,
        description="Save each fine-tuned model (Hugging Face format with a model card) "
        "under <output>/artifacts/models/.",
    )

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        dupes = sorted({s for s in seeds if seeds.count(s) > 1})
        if dupes:
            raise ValueError(f"seeds must be unique; remove the repeated {dupes}")
        return seeds

    @model_serializer(mode="wrap")
    def _omit_empty_curve(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Config hashes and manifests hash training dumps: a config without a real curve dumps
        # exactly as it did before the field existed, so its hash and run names stay put.
        data: dict[str, Any] = handler(self)
        if not self.real_curve:
            data.pop("real_curve", None)
        return data

    @field_validator("real_curve")
    @classmethod
    def _ascending_curve(cls, sizes: list[int]) -> list[int]:
        # Each point is named by its size (real@k) and the crossing is read off a curve
        # ordered by size, so a repeat or a reordering would mean two models of one name.
        if any(k < 1 for k in sizes) or sizes != sorted(set(sizes)):
            raise ValueError(
                "real_curve must list real rows per label, each >= 1, strictly ascending; "
                f"write it as {sorted({k for k in sizes if k >= 1})}"
            )
        return sizes


class EvaluationConfig(_Stage):
    """Evaluation on the real test split."""

    max_test_examples: int | None = Field(
        default=None, ge=1, description="Stratified, seeded subsample of the test split."
    )
    seed: int = 42


class AnalysisConfig(_Stage):
    """Diversity, similarity to real data and the subjectivity fits."""

    embedding_model: str = Field(
        default=EMBEDDED_ENCODER,
        description="Sentence encoder for diversity and similarity: 'embedded:all-MiniLM-L6-v2', "
        "a local directory or a hub id of a sentence-transformers model (mean pooling).",
    )
    diversity_max_texts: int = Field(
        default=3000,
        ge=2,
        description="At most this many texts per task and source for the diversity measures "
        "(seeded sample); all sources of a task get the size of its smallest set, and the real "
        "sample follows the synthetic label distribution.",
    )
    distance: Literal["cosine", "euclidean"] = Field(
        default="cosine", description="Distance between embeddings for Remote-Clique and Chamfer."
    )
    similarity_top_k: int = Field(
        default=5, ge=1, description="Synthetic neighbours per real instance for similarity."
    )
    comparisons_file: str | None = Field(
        default=None,
        description="CSV or Parquet of pairwise judgments (task_a, task_b, winner = the task "
        "judged more objective), absolute or relative to the data directory; a Bradley-Terry "
        "fit replaces the registry's subjectivity levels. Null: the registry's levels.",
    )
    annotator_panel: int = Field(
        default=0,
        ge=0,
        description="k: LLM annotator calls per test instance (with annotator_llm, else the "
        "generator's llm) to *estimate* agreement for tasks without human annotations; 0 = off.",
    )
    annotator_max_instances: int = Field(
        default=200,
        ge=1,
        description="Test instances the annotator panel labels per task (a seeded sample "
        "stratified by gold label, drawn with analysis.seed).",
    )
    annotator_llm: LLMConfig | None = Field(
        default=None,
        description="Endpoint, model and sampling of the annotator panel, e.g. a stronger "
        "model than the generator (null: the generator's llm).",
    )
    min_instances_per_threshold: int = Field(
        default=20,
        ge=1,
        description="Agreement thresholds kept by fewer test instances are not fitted.",
    )
    seed: int = 42

    @model_validator(mode="after")
    def _annotator_llm_needs_a_panel(self) -> AnalysisConfig:
        if self.annotator_llm is not None and self.annotator_panel == 0:
            raise ValueError(
                "analysis.annotator_llm is set but analysis.annotator_panel is 0, so no "
                "annotator runs; set annotator_panel to k >= 1 or remove annotator_llm"
            )
        return self


class RuntimeConfig(_Stage):
    """Operational knobs: never hashed, never change results."""

    concurrency: int = Field(default=2, ge=1, description="In-flight requests per label chunk.")
    parallel_chunks: int = Field(
        default=4,
        ge=1,
        description="Label chunks generated at once. With the embedded generator each chunk of "
        "a wave gets its own llama.cpp server (up to one per CPU core, sharing the cores), "
        "which answers its chunk's requests in order and so reuses each conversation's "
        "prompt prefix; a free lane takes the next chunk. On 2 cores, 2 single-threaded servers "
        "and 1 with both threads served the same requests/s (bench/llama_throughput.py).",
    )
    request_timeout_s: float = Field(default=120.0, gt=0)
    http_client: HttpClient = Field(
        default="aiohttp",
        description="The openai SDK's HTTP client for generation and annotation requests: "
        "aiohttp (its DefaultAioHttpClient, HTTP parsed in C) spends ~0.5 ms less CPU a request "
        "than httpx (its default), and on a CPU-bound machine that is requests/s; httpx is "
        "the fallback.",
    )
    inference_batch_size: int = Field(default=64, ge=1)
    embedded_port: int | None = Field(
        default=None, ge=1024, le=65535, description="Port of the embedded llama.cpp server."
    )
    requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="The endpoint's request rate limit; a token bucket shared by all label "
        "chunks of the process keeps under it (null: no limit).",
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="The endpoint's token rate limit (prompt + max_tokens booked per request, "
        "corrected by the reply's usage; null: no limit).",
    )
    max_cost_usd: float | None = Field(
        default=None,
        ge=0.0,
        description="Budget cap for a flow run's generation and annotation together: the run "
        "stops cleanly before a request that could take its cost (cached replies included) "
        "past this; rerun with a higher cap to resume (null: no cap).",
    )
    state_db: StateDbUrl | None = Field(
        default=None,
        description="Database of the request cache and the budget ledger, shared by every "
        "process and host that uses it: postgresql+psycopg://USER@HOST:PORT/DB (password in "
        "PGPASSWORD or PGPASSFILE, never in the URL) or sqlite:///PATH. The environment's "
        "LLMSYNTH_STATE_DB overrides it; null: a SQLite file next to the artifacts "
        "(request-cache.sqlite), one per machine.",
    )
    batch: bool = Field(
        default=False,
        description="Send generation requests through the endpoint's Batch API (/v1/files, "
        "/v1/batches) at llm.batch_price_factor of the price: each round of a label chunk is "
        "one batch, answered within 24 h; every label chunk waits at once. Endpoints without "
        "one (the embedded llama.cpp server, vLLM, Ollama) are refused.",
    )
    batch_min_requests: int = Field(
        default=50,
        ge=1,
        description="A round with fewer requests still unanswered than this goes live "
        "instead of waiting for a batch (runtime.batch only).",
    )
    batch_poll_s: float = Field(
        default=30.0, gt=0, description="First wait before polling a batch's status again."
    )
    batch_poll_max_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest wait between polls; waits double from batch_poll_s up to this.",
    )
    training_deployment: str | None = Field(
        default=None,
        pattern=r"^[^/]+/[^/]+$",
        description="Train on a training work pool through this Prefect deployment "
        "('<flow>/<deployment>', e.g. 'train/train'); its workers must reach the same artifact "
        "store. Null trains in the pipeline's own process.",
    )

    @model_validator(mode="after")
    def _poll_bounds(self) -> RuntimeConfig:
        if self.batch_poll_max_s < self.batch_poll_s:
            raise ValueError(
                f"runtime.batch_poll_max_s={self.batch_poll_max_s:g} is below "
                f"runtime.batch_poll_s={self.batch_poll_s:g}; raise batch_poll_max_s"
            )
        return self


class ExperimentConfig(_Stage):
    """A whole experiment, as named by a YAML file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    tasks: list[str] = Field(min_length=1)
    task_dirs: list[str] = Field(
        default_factory=list, description="Extra directories of task spec YAML files."
    )
    llm: LLMConfig = LLMConfig()
    generation: GenerationConfig = GenerationConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[str]) -> list[str]:
        dupes = sorted({t for t in tasks if tasks.count(t) > 1})
        if dupes:
            raise ValueError(f"tasks must be unique; remove the repeated {dupes}")
        return tasks

    @property
    def panel_llm(self) -> LLMConfig:
        """The annotator panel's llm: analysis.annotator_llm, else the generator's."""
        return self.analysis.annotator_llm or self.llm

    def for_replicate(self, replicate: int) -> ExperimentConfig:
        """The config that generates synthetic set `replicate` (0-based): llm.seed + replicate."""
        llm = self.llm.model_copy(update={"seed": self.llm.seed + replicate})
        return self.model_copy(update={"llm": llm})

    @model_validator(mode="after")
    def _mixtures_use_generated_modes(self) -> ExperimentConfig:
        names = [m.name for m in self.training.mixtures]
        for mixture in self.training.mixtures:
            if mixture.mode not in self.generation.modes:
                raise ValueError(
                    f"training.mixtures: mode {mixture.mode!r} is not generated; add it to "
                    f"generation.modes {self.generation.modes} or change the mixture"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"training.mixtures must be distinct; two are {names}")
        return self

    def semantic_dict(self) -> dict[str, Any]:
        # Prices are left out like runtime: updating them to a provider's new price list must
        # not rename run directories or make manifests disagree about an unchanged experiment.
        # The manifests that record costs store the prices they used next to the config.
        return self.model_dump(
            mode="json",
            exclude={
                "runtime": True,
                "description": True,
                "llm": set(PRICE_FIELDS),
                "analysis": {"annotator_llm": set(PRICE_FIELDS)},
            },
        )

    def semantic_hash(self) -> str:
        return stable_hash(self.semantic_dict())


def parse_experiment(raw: object, source: str) -> ExperimentConfig:
    return validated(ExperimentConfig, raw, source)


def load_experiment(path: Path) -> ExperimentConfig:
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return parse_experiment(raw, str(path))


def preset_path(name: str) -> Path:
    path = Path(__file__).parent / "presets" / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown preset {name!r}; available: {sorted(list_presets())}")
    return path


def list_presets() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parent / "presets").glob("*.yaml"))
