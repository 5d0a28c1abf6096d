"""One side of the training benchmark in its own process, so its peak RSS is its own.

`python -m bench.training_sides '<RunSpec as JSON>'` trains and scores one side once and prints
`RESULT <json>` as its last line. The sides:

- llmsynth: `llmsynth_core.training.train_classifier`, then `predict_proba`.
- hf-plain: the Hugging Face `Trainer` with its documented defaults (fp32, random sampling).
- hf-tuned: the `Trainer` as a speed-minded user sets it up on the same device: bf16 where
  llmsynth trains in bf16, `group_by_length` with precomputed lengths, fused AdamW and, on
  request, `torch_compile`.

Both Trainer sides get pre-tokenised datasets (made before their clock starts) and
`DataCollatorWithPadding`; timed training is model loading plus training on every side.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmsynth_core.config import TrainingConfig
from llmsynth_core.metrics import macro_f1
from llmsynth_core.training import EpochLog, bf16_autocast_used, train_classifier

SIDES = ("llmsynth", "hf-tuned", "hf-plain")
PHASES = ("collate", "forward", "backward", "optimizer")
RESULT_PREFIX = "RESULT "
Window = tuple[tuple[float, float], tuple[float, float]]  # (wall, CPU) at start and at end


@dataclass(frozen=True)
class RunSpec:
    """Everything one side's process needs; it travels as JSON on the command line."""

    side: str
    device: str
    seed: int
    model_dir: str
    train_path: str
    test_path: str
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    max_length: int
    learning_rate: float
    hf_compile: bool = False
    profile: bool = False
    score: bool = True  # False on cuda: a randomly initialised encoder has no F1 worth reading


@dataclass
class RunResult:
    """What one run measured: seconds, Macro-F1 and test predictions, peaks, phase totals."""

    side: str
    seed: int
    train_s: float
    loop_s: float
    steps: int
    infer_s: float | None
    macro_f1: float | None
    predictions: list[int] | None
    peak_rss_mib: float
    peak_gpu_mib: float | None
    train_precision: str
    infer_precision: str | None
    tokenise_s: float
    train_cpu_s: float = 0.0  # process CPU seconds (all threads) over the train_s window
    infer_cpu_s: float | None = None  # the same over the infer_s window
    phases: dict[str, float] | None = None  # seconds per PHASES name, summed over steps
    cpu_phases: dict[str, float] | None = None  # CPU seconds per PHASES name
    phase_steps: int = 0


@dataclass(frozen=True)
class Split:
    """Texts with their label ids, in file order."""

    texts: list[str]
    labels: list[int]


@dataclass(frozen=True)
class BenchData:
    """Train and test rows plus label names ordered by label id."""

    train: Split
    test: Split
    label_names: list[str]


def load_split(path: Path, n: int) -> tuple[Split, dict[int, str]]:
    """First `n` rows of a Parquet split, and the label id -> name map seen in them."""
    frame = pd.read_parquet(path, columns=["text", "label", "label_id"]).head(n)
    names = dict(zip(frame["label_id"].astype(int), frame["label"].astype(str), strict=True))
    split = Split(texts=frame["text"].tolist(), labels=frame["label_id"].astype(int).tolist())
    return split, names


def load_data(train_path: Path, test_path: Path, n_train: int, n_test: int) -> BenchData:
    """Train and test rows; label ids must mean the same in both files."""
    train, train_names = load_split(train_path, n_train)
    test, test_names = load_split(test_path, n_test)
    names = {**train_names, **test_names}
    if any(train_names.get(i, name) != name for i, name in test_names.items()):
        raise ValueError(f"label ids differ between train {train_names} and test {test_names}")
    return BenchData(train=train, test=test, label_names=[names[i] for i in sorted(names)])


def training_config(spec: RunSpec) -> TrainingConfig:
    """The one set of hyperparameters every side uses (llmsynth's defaults for the rest)."""
    return TrainingConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        max_length=spec.max_length,
        seeds=[spec.seed],
    )


def now() -> tuple[float, float]:
    """Wall-clock seconds and this process's CPU seconds (user + system, all threads)."""
    return time.perf_counter(), time.process_time()


@dataclass
class PhaseClock:
    """Wall and CPU time per training-step phase from process-wide hooks, so no trainer's code
    changes.

    A step runs: [collate, scheduler, zero_grad] -> forward -> backward, grad clip -> optimizer.
    The top-level forward is the first training-mode module call outside any other; the
    optimizer's step hooks close the step. Inference (eval mode) is not counted. CPU time counts
    every thread of the process, so on a loaded machine it moves far less than wall time.
    """

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    cpu_totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    steps: int = 0
    _depth: int = 0
    _forward_start: tuple[float, float] = (0.0, 0.0)
    _forward_end: tuple[float, float] = (0.0, 0.0)
    _optimizer_start: tuple[float, float] = (0.0, 0.0)
    _step_end: tuple[float, float] | None = None

    def _add(self, phase: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.totals[phase] += end[0] - start[0]
        self.cpu_totals[phase] += end[1] - start[1]

    def before_module(self, module: Any, _args: Any) -> None:
        if not module.training:
            return
        if self._depth == 0:
            self._forward_start = now()
            if self._step_end is not None:
                self._add("collate", self._step_end, self._forward_start)
        self._depth += 1

    def after_module(self, module: Any, _args: Any, _output: Any) -> None:
        if not module.training or self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._forward_end = now()
            self._add("forward", self._forward_start, self._forward_end)

    def before_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        self._optimizer_start = now()
        self._add("backward", self._forward_end, self._optimizer_start)

    def after_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        self._step_end = now()
        self._add("optimizer", self._optimizer_start, self._step_end)
        self.steps += 1

    def end_epoch(self) -> None:
        """Forget the last step's end, so epoch boundaries do not count as collate time."""
        self._step_end = None


@contextmanager
def phase_hooks(clock: PhaseClock | None) -> Iterator[None]:
    """Install `clock`'s hooks on every module and optimizer for the block (no-op for None)."""
    if clock is None:
        yield
        return
    from torch.nn.modules import module as nn_module
    from torch.optim import optimizer as optim_module

    handles = [
        nn_module.register_module_forward_pre_hook(clock.before_module),
        nn_module.register_module_forward_hook(clock.after_module),
        optim_module.register_optimizer_step_pre_hook(clock.before_step),
        optim_module.register_optimizer_step_post_hook(clock.after_step),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mib(device: str) -> float | None:
    """Peak GPU memory torch allocated in this process, on CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    return float(torch.cuda.max_memory_allocated()) / 2**20


def sync(device: str) -> None:
    """Wait for queued GPU work, so a clock read after it covers it."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def warm_up(spec: RunSpec, data: BenchData, bf16: bool) -> None:
    """One forward and backward pass in the side's precision, so one-time start-up costs
    (thread pools, kernel selection, CUDA context) hit no timed run."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        spec.model_dir, num_labels=len(data.label_names), local_files_only=True
    ).to(spec.device)
    batch = tokenizer(
        data.train.texts[: spec.batch_size],
        truncation=True,
        max_length=spec.max_length,
        padding=True,
        return_tensors="pt",
    ).to(spec.device)
    device_type = "cuda" if spec.device.startswith("cuda") else "cpu"
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).logits.float().sum()
    loss.backward()
    sync(spec.device)
    del model, loss
    gc.collect()
    if spec.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # the peak printed is training's, not warm-up's


def run_llmsynth(spec: RunSpec, data: BenchData, clock: PhaseClock | None) -> RunResult:
    """Train, time and score llmsynth's trainer."""
    from transformers import AutoTokenizer

    config = training_config(spec)
    bf16 = bf16_autocast_used(spec.device, config.precision)
    warm_up(spec, data, bf16)
    tokeniser = AutoTokenizer.from_pretrained(spec.model_dir, local_files_only=True)
    tokenise_s = _timed(
        lambda: tokeniser(data.train.texts, truncation=True, max_length=spec.max_length)
    )
    epochs: list[EpochLog] = []

    def on_epoch(log: EpochLog) -> None:
        epochs.append(log)
        if clock is not None:
            clock.end_epoch()

    n_labels = len(data.label_names)
    started = now()
    with phase_hooks(clock):
        trained = train_classifier(
            data.train.texts,
            data.train.labels,
            n_labels,
            spec.model_dir,
            config,
            on_epoch=on_epoch,
            label_names=data.label_names,
            device=spec.device,
        )
    sync(spec.device)
    ended = now()
    infer: Window | None = None
    predicted = None
    if spec.score:
        infer_started = now()
        proba = trained.predict_proba(data.test.texts, batch_size=spec.eval_batch_size)
        infer = (infer_started, now())
        predicted = proba.argmax(axis=1)
    return measured(
        spec,
        clock,
        data,
        train=(started, ended),
        infer=infer,
        predicted=predicted,
        loop_s=sum(log.seconds for log in epochs),
        steps=sum(log.steps for log in epochs),
        train_precision="bf16 autocast" if bf16 else "fp32",
        infer_precision=None if not spec.score else trained.inference_precision,
        tokenise_s=tokenise_s,
    )


def measured(
    spec: RunSpec,
    clock: PhaseClock | None,
    data: BenchData,
    train: Window,
    infer: Window | None,
    predicted: Any,
    **fields: Any,
) -> RunResult:
    """A side's RunResult: its training and inference windows as wall and CPU seconds, Macro-F1
    of the test predictions (in test-row order; None when not scored), this process's peaks and
    the phase totals."""
    score = None
    if predicted is not None:
        score = macro_f1(np.asarray(data.test.labels), predicted, len(data.label_names))
    return RunResult(
        side=spec.side,
        seed=spec.seed,
        train_s=train[1][0] - train[0][0],
        train_cpu_s=train[1][1] - train[0][1],
        infer_s=None if infer is None else infer[1][0] - infer[0][0],
        infer_cpu_s=None if infer is None else infer[1][1] - infer[0][1],
        macro_f1=score,
        predictions=None if predicted is None else [int(p) for p in predicted],
        peak_rss_mib=peak_rss_mib(),
        peak_gpu_mib=peak_gpu_mib(spec.device),
        phases=dict(clock.totals) if clock else None,
        cpu_phases=dict(clock.cpu_totals) if clock else None,
        phase_steps=clock.steps if clock else 0,
        **fields,
    )


def hf_arguments(spec: RunSpec, output_dir: str, bf16: bool) -> Any:
    """TrainingArguments for the side: the documented defaults, or tuned for speed."""
    from transformers import TrainingArguments

    config = training_config(spec)
    tuned: dict[str, Any] = {}
    if spec.side == "hf-tuned":
        tuned = {
            "bf16": bf16,
            "train_sampling_strategy": "group_by_length",
            "length_column_name": "length",  # precomputed, so the sampler does not measure
            "optim": "adamw_torch_fused",
            "torch_compile": spec.hf_compile,
        }
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=spec.eval_batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio here
        seed=config.seeds[0],
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=spec.device == "cpu",
        **tuned,
    )


def hf_tokenised(tokenizer: Any, split: Split, max_length: int) -> Any:
    """A `datasets.Dataset` of token ids, labels and lengths, built with `Dataset.map`."""
    from datasets import Dataset

    def encode(rows: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(rows["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return dict(encoded)

    raw = Dataset.from_dict({"text": split.texts, "labels": split.labels})
    return raw.map(encode, batched=True, remove_columns=["text"])


def run_hf(spec: RunSpec, data: BenchData, clock: PhaseClock | None) -> RunResult:
    """Train, time and score the Hugging Face `Trainer` on pre-tokenised data."""
    from datasets.utils.logging import disable_progress_bar
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        set_seed,
    )

    disable_progress_bar()
    bf16 = spec.side == "hf-tuned" and bf16_autocast_used(spec.device, "auto")
    warm_up(spec, data, bf16)
    n_labels = len(data.label_names)
    tokenizer = AutoTokenizer.from_pretrained(spec.model_dir, local_files_only=True)
    tokenise_started = time.perf_counter()
    train_set = hf_tokenised(tokenizer, data.train, spec.max_length)
    tokenise_s = time.perf_counter() - tokenise_started
    test_set = hf_tokenised(tokenizer, data.test, spec.max_length) if spec.score else None

    class EpochEnd(TrainerCallback):
        def on_epoch_end(self, *_args: Any, **_kwargs: Any) -> None:
            if clock is not None:
                clock.end_epoch()

    with tempfile.TemporaryDirectory() as output_dir, phase_hooks(clock):
        started = now()
        set_seed(spec.seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.model_dir,
            num_labels=n_labels,
            id2label=dict(enumerate(data.label_names)),
            label2id={name: i for i, name in enumerate(data.label_names)},
            local_files_only=True,
        )
        trainer = Trainer(
            model=model,
            args=hf_arguments(spec, output_dir, bf16),
            train_dataset=train_set,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            callbacks=[EpochEnd()],
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict is noise here
        loop_started = time.perf_counter()
        trained = trainer.train()
        sync(spec.device)
        done = now()
        infer: Window | None = None
        predicted = None
        if test_set is not None:
            output = trainer.predict(test_set)
            infer = (done, now())
            predicted = in_dataset_order(trainer, test_set, output, data.test.labels)
    precision = "bf16 autocast" if bf16 else "fp32"
    return measured(
        spec,
        clock,
        data,
        train=(started, done),
        infer=infer,
        predicted=predicted,
        loop_s=done[0] - loop_started,
        steps=int(trained.global_step),
        train_precision=precision,
        infer_precision=precision if spec.score else None,
        tokenise_s=tokenise_s,
    )


def in_dataset_order(trainer: Any, dataset: Any, output: Any, labels: list[int]) -> Any:
    """Predicted label ids in dataset order. With group_by_length the Trainer also predicts in
    length-grouped order (its eval sampler is seeded, so asking for it again gives the same
    order); the labels it returns must match ours in that order."""
    predicted = np.asarray(output.predictions).argmax(axis=1)
    sampler = trainer._get_eval_sampler(dataset)
    order = np.asarray(list(sampler) if sampler is not None else range(len(labels)))
    if not np.array_equal(np.asarray(output.label_ids), np.asarray(labels)[order]):
        raise RuntimeError("could not line the Trainer's predictions up with the test rows")
    in_order = np.empty_like(predicted)
    in_order[order] = predicted
    return in_order


def run(spec: RunSpec) -> RunResult:
    """One run of one side."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if spec.side not in SIDES:
        raise ValueError(f"unknown side {spec.side!r}; choose one of {SIDES}")
    data = load_data(Path(spec.train_path), Path(spec.test_path), spec.n_train, spec.n_test)
    clock = PhaseClock() if spec.profile else None
    runner = run_llmsynth if spec.side == "llmsynth" else run_hf
    return runner(spec, data, clock)


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    spec = RunSpec(**json.loads(argv[0]))
    result = run(spec)
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
