"""Fine-tuning an encoder for sequence classification: the plain torch loop behind train stages.

torch and transformers are imported inside the functions that use them, so this module imports
on hosts without them.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmsynth_core.config import TrainingConfig
from llmsynth_core.fast_dropout import fast_dropout
from llmsynth_core.heap import reuse_freed_memory
from llmsynth_core.metrics import macro_f1

if TYPE_CHECKING:
    import torch

# Batches are drawn from buckets this many batches wide, sorted by length inside each bucket,
# so padding stays small while batch composition still varies between epochs.
BUCKET_BATCHES = 50
MIN_BUCKETS = 4
# Standard BERT fine-tuning recipe (as in the transformers Trainer); not a TrainingConfig field.
MAX_GRAD_NORM = 1.0
# Bump when the loop computes different numbers from the same inputs; training job keys hash it,
# so stored runs of an older loop are not mixed with new ones.
# 2: on CPU, dropout masks come from numpy's PCG64 (llmsynth_core/fast_dropout.py).
LOOP_VERSION = 2

Features = dict[str, list[list[int]]]


@dataclass(frozen=True)
class EpochLog:
    """One finished (or step-capped) epoch: mean batch loss, steps, wall time, and Macro-F1 on
    the validation and monitored splits when given."""

    epoch: int
    train_loss: float
    steps: int
    seconds: float
    validation_macro_f1: float | None = None
    monitor_macro_f1: float | None = None


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with label ids, e.g. a validation split or the test split monitored per epoch."""

    texts: Sequence[str]
    labels: Sequence[int]


@dataclass
class TrainedClassifier:
    """A fine-tuned model with its tokenizer, ready for batched inference and saving."""

    model: Any
    tokenizer: Any
    device: str
    max_length: int
    best_epoch: int | None = None
    epochs_run: int = 0
    precision: str = "auto"

    @property
    def inference_precision(self) -> str:
        """What `predict_proba` computes in: fp32 on CPU, else as in training."""
        if self.device != "cpu" and bf16_autocast_used(self.device, self.precision):
            return "bf16 autocast"
        return "fp32"

    @property
    def n_labels(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [str(id2label[i]) for i in range(self.n_labels)]

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> npt.NDArray[np.float32]:
        """Class probabilities, shape (len(texts), n_labels), in the order of `texts`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.n_labels), dtype=np.float32)
        return self._proba(
            _tokenize(self.tokenizer, texts, max_length or self.max_length), batch_size
        )

    def _proba(self, features: Features, batch_size: int) -> npt.NDArray[np.float32]:
        """`predict_proba` of texts tokenised already."""
        import torch

        lengths = np.array([len(ids) for ids in features["input_ids"]])
        out = np.zeros((len(lengths), self.n_labels), dtype=np.float32)
        # Longest first, so padding within a batch is minimal and memory peaks early.
        order = np.argsort(-lengths, kind="stable")
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size].tolist()
                batch = _collate(features, idx, self.tokenizer, self.device)
                # On CPU inference stays fp32, so scores match a plain `pipeline` on the saved
                # model; bf16 pays off in training's backward pass.
                with _autocast(self.device, "fp32" if self.device == "cpu" else self.precision):
                    logits = self.model(**batch).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        self.model.train(was_training)
        return out

    def macro_f1(self, data: LabelledTexts, batch_size: int = 64) -> float:
        """Macro-F1 of this model on labelled texts."""
        return macro_f1(data.labels, self.predict(data.texts, batch_size), self.n_labels)

    def predict(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Most probable label id per text."""
        proba = self.predict_proba(texts, batch_size=batch_size, max_length=max_length)
        ids: npt.NDArray[np.int64] = proba.argmax(axis=1).astype(np.int64)
        return ids

    def save(self, path: str, model_card: str) -> None:
        """Write a standard Hugging Face checkpoint plus README.md, loadable by `pipeline`."""
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(target))
        self.tokenizer.save_pretrained(str(target))
        (target / "README.md").write_text(model_card, encoding="utf-8")


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[int],
    n_labels: int,
    model_dir: str,
    config: TrainingConfig,
    on_epoch: Callable[[EpochLog], None] | None = None,
    label_names: Sequence[str] | None = None,
    *,
    device: str | None = None,
    seed: int | None = None,
    validation: LabelledTexts | None = None,
    monitor: LabelledTexts | None = None,
) -> TrainedClassifier:
    """Fine-tune the checkpoint in local `model_dir` on (texts, labels); device None = auto.

    With `validation`, Macro-F1 on it after every epoch drives early stopping (the best epoch's
    weights are kept); `monitor` (e.g. the test split) is only scored per epoch, for curves.
    """
    _check_inputs(texts, labels, n_labels, label_names)
    seed = config.seeds[0] if seed is None else seed
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    run_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    seed_everything(seed)
    with _deterministic_on_cpu(run_device):
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        label_kwargs: dict[str, Any] = {}
        if label_names is not None:
            label_kwargs["id2label"] = dict(enumerate(label_names))
            label_kwargs["label2id"] = {name: i for i, name in enumerate(label_names)}
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=n_labels, local_files_only=True, **label_kwargs
        )
        # Half-precision checkpoints would make AdamW updates lossy; train master weights in fp32.
        model = model.float().to(run_device)

        features = _tokenize(tokenizer, texts, config.max_length)
        # Scored every epoch: tokenised once here, not once per epoch.
        scored_validation = _Scored.of(validation, tokenizer, config.max_length)
        scored_monitor = _Scored.of(monitor, tokenizer, config.max_length)
        lengths = np.array([len(ids) for ids in features["input_ids"]])
        targets = torch.tensor(list(labels), dtype=torch.long)
        batch_rng = np.random.default_rng(seed)

        steps_per_epoch = math.ceil(len(texts) / config.batch_size)
        total_steps = config.epochs * steps_per_epoch
        if config.max_steps is not None:
            total_steps = min(total_steps, config.max_steps)
        optimizer = torch.optim.AdamW(
            _param_groups(model, config.weight_decay),
            lr=config.learning_rate,
            # One fused kernel per step instead of a loop over parameters, where torch has it.
            **_fused_if_available(run_device),
        )
        scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
            optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
        )

        classifier = TrainedClassifier(
            model=model,
            tokenizer=tokenizer,
            device=run_device,
            max_length=config.max_length,
            precision=config.precision,
        )
        stopper = _EarlyStopping(config.early_stopping_patience if validation else None)
        model.train()
        step = 0
        loop = _Loop(model, optimizer, scheduler, tokenizer, features, targets, run_device, config)
        with _cpu_speedups(model, run_device, seed):
            for epoch in range(1, config.epochs + 1):
                started = time.perf_counter()
                batches = length_grouped_batches(lengths, config.batch_size, batch_rng)
                train_loss, epoch_steps = loop.epoch(batches, total_steps - step)
                if not epoch_steps:
                    break
                step += epoch_steps
                classifier.epochs_run = epoch
                log = EpochLog(
                    epoch=epoch,
                    train_loss=train_loss,
                    steps=epoch_steps,
                    seconds=time.perf_counter() - started,
                    validation_macro_f1=scored_validation.macro_f1(classifier),
                    monitor_macro_f1=scored_monitor.macro_f1(classifier),
                )
                if on_epoch is not None:
                    on_epoch(log)
                if log.validation_macro_f1 is not None and stopper.update(
                    epoch, log.validation_macro_f1, model
                ):
                    break
                if step >= total_steps:
                    break
        classifier.best_epoch = stopper.restore(model) or classifier.epochs_run
        model.eval()
    return classifier


@dataclass(frozen=True)
class _Loop:
    """What one epoch of optimizer steps needs."""

    model: Any
    optimizer: Any
    scheduler: Any
    tokenizer: Any
    features: Features
    targets: torch.Tensor
    device: str
    config: TrainingConfig

    def epoch(self, batches: Sequence[Sequence[int]], max_steps: int) -> tuple[float, int]:
        """At most `max_steps` steps over `batches`; returns the mean batch loss and the steps."""
        import torch

        loss_sum = torch.zeros((), device=self.device)
        steps = 0
        for idx in batches[:max_steps]:
            batch = _collate(self.features, idx, self.tokenizer, self.device)
            with _autocast(self.device, self.config.precision):
                loss = self.model(**batch, labels=self.targets[idx].to(self.device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            # Accumulate on device: one host sync per epoch, not per step.
            loss_sum += loss.detach().float()
            steps += 1
        return (float(loss_sum.item()) / steps if steps else 0.0), steps


@dataclass(frozen=True)
class _Scored:
    """Labelled texts scored after every epoch, with their token ids (None: nothing to score)."""

    data: LabelledTexts | None
    features: Features | None

    @classmethod
    def of(cls, data: LabelledTexts | None, tokenizer: Any, max_length: int) -> _Scored:
        if not data or not data.texts:
            return cls(data, None)
        return cls(data, _tokenize(tokenizer, data.texts, max_length))

    def macro_f1(self, classifier: TrainedClassifier, batch_size: int = 64) -> float | None:
        if self.data is None:
            return None
        if self.features is None:
            return classifier.macro_f1(self.data, batch_size)
        predicted = classifier._proba(self.features, batch_size).argmax(axis=1)
        return macro_f1(self.data.labels, predicted, classifier.n_labels)


@contextlib.contextmanager
def _cpu_speedups(model: Any, device: str, seed: int) -> Iterator[None]:
    """On CPU, for the training loop: freed memory stays in the heap and dropout masks come
    from numpy (see llmsynth_core/heap.py and fast_dropout.py); elsewhere nothing changes."""
    if device != "cpu":
        yield
        return
    with reuse_freed_memory(), fast_dropout(model, seed):
        yield


class _EarlyStopping:
    """Keeps the weights of the best validation epoch; says stop after `patience` worse ones."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_score = -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.last_epoch = 0

    def update(self, epoch: int, score: float, model: Any) -> bool:
        self.last_epoch = epoch
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            if self.patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        return self.patience is not None and epoch - (self.best_epoch or 0) >= self.patience

    def restore(self, model: Any) -> int | None:
        """Load the best epoch's weights if a later epoch was worse; returns the best epoch."""
        if self.best_state is not None and self.best_epoch != self.last_epoch:
            model.load_state_dict(self.best_state)
        return self.best_epoch if self.patience is not None else None


def _fused_if_available(device: str) -> dict[str, Any]:
    import inspect

    import torch

    if "fused" not in inspect.signature(torch.optim.AdamW).parameters:
        return {}
    # Fused AdamW runs on CUDA and, since torch 2.4, on CPU.
    return {"fused": True} if device.startswith("cuda") or device == "cpu" else {}


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so a rerun on CPU is bit-identical."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def length_grouped_batches(
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    batch_size: int,
    rng: np.random.Generator,
    bucket_batches: int = BUCKET_BATCHES,
) -> list[list[int]]:
    """Shuffled batches of indices whose members have similar lengths; every index once."""
    sizes = np.asarray(lengths)
    order = rng.permutation(len(sizes))
    # At least MIN_BUCKETS buckets: one bucket holding everything would sort the whole set by
    # length and give every epoch the same batches, which costs accuracy.
    per_bucket = min(bucket_batches, max(1, math.ceil(len(sizes) / batch_size / MIN_BUCKETS)))
    bucket = batch_size * per_bucket
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(-sizes[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _check_inputs(
    texts: Sequence[str],
    labels: Sequence[int],
    n_labels: int,
    label_names: Sequence[str] | None,
) -> None:
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length: {len(texts)} vs {len(labels)}")
    if not texts:
        raise ValueError("no training examples; pass at least one (text, label) pair")
    if n_labels < 2:
        raise ValueError(f"n_labels must be >= 2 for a classifier, got {n_labels}")
    bad = sorted({int(y) for y in labels if not 0 <= int(y) < n_labels})
    if bad:
        raise ValueError(f"labels must be ids in [0, {n_labels}); found {bad}")
    if label_names is not None and len(label_names) != n_labels:
        raise ValueError(
            f"label_names has {len(label_names)} names but n_labels is {n_labels}; "
            "give one name per label id"
        )


def _tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> Features:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    names = getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])
    return {name: encoded[name] for name in names if name in encoded}


def _collate(
    features: Features, idx: Sequence[int], tokenizer: Any, device: str
) -> dict[str, torch.Tensor]:
    """Pad the selected examples to the longest among them (dynamic padding)."""
    import torch

    width = max(len(features["input_ids"][i]) for i in idx)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pad_left = getattr(tokenizer, "padding_side", "right") == "left"
    batch: dict[str, torch.Tensor] = {}
    for name, rows in features.items():
        matrix = np.full((len(idx), width), pad_id if name == "input_ids" else 0, dtype=np.int64)
        for r, i in enumerate(idx):
            seq = rows[i]
            if pad_left:
                matrix[r, width - len(seq) :] = seq
            else:
                matrix[r, : len(seq)] = seq
        batch[name] = torch.from_numpy(matrix).to(device)
    return batch


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    # Biases and LayerNorm weights (all 1-d tensors) are not decayed, as in BERT's recipe.
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def bf16_autocast_used(device: str, precision: str = "auto") -> bool:
    """Whether training at `precision` on `device` runs under bf16 autocast: 'auto' and 'bf16'
    where the hardware computes bf16 natively (CUDA with bf16; CPUs with AVX512-BF16 or AMX)."""
    return precision != "fp32" and _native_bf16(device)


def _autocast(device: str, precision: str = "auto") -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where `bf16_autocast_used`, else full fp32."""
    if not bf16_autocast_used(device, precision):
        return contextlib.nullcontext()
    import torch

    return torch.autocast(
        device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16
    )


def _native_bf16(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    # Private probes, hence getattr: torch has no public "native CPU bf16" query.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(
        callable(getattr(torch.cpu, name, None)) and getattr(torch.cpu, name)() for name in probes
    )


@contextlib.contextmanager
def _deterministic_on_cpu(device: str) -> Iterator[None]:
    """Deterministic kernels while training on CPU; the global settings are restored.

    Without torch's companion setting, deterministic mode also fills every new tensor with NaN
    before a kernel overwrites it (`torch.utils.deterministic.fill_uninitialized_memory`):
    13% of a fine-tuning step's CPU time here, for no change in any result (every kernel
    writes its whole output), so it is off for the block.
    """
    import torch
    import torch.utils.deterministic

    # A module whose attribute is a property: typed Any, as stubs do not declare it.
    deterministic: Any = torch.utils.deterministic
    if device != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        deterministic.fill_uninitialized_memory = previous_fill
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
