"""Benchmark: llmsynth's `train_classifier` against the Hugging Face `Trainer` recipe on CPU.

Both fine-tune the embedded MiniLM on the same AG News rows with the same hyperparameters in one
process; timed training covers model loading, tokenization and the loop for both, after a warm-up.
Run `HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m bench.training` (needs accelerate).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmsynth_core.config import TrainingConfig
from llmsynth_core.metrics import macro_f1
from llmsynth_core.training import EpochLog, train_classifier
from tasks.encoders import resolve_encoder

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ENCODER = "embedded:all-MiniLM-L6-v2"
SPEED_TARGET = 1.2
F1_TOLERANCE = 0.01


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


@dataclass(frozen=True)
class RunResult:
    """What one trainer measured: timings in seconds, test Macro-F1, peak RSS in MiB so far."""

    name: str
    train_s: float
    loop_s: float
    infer_s: float
    macro_f1: float
    peak_rss_mib: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults keep the whole benchmark to a few minutes on 2 cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-path", type=Path, default=DATASETS / "ag_news" / "train.parquet")
    parser.add_argument(
        "--test-path", type=Path, default=DATASETS / "sample" / "ag_news" / "test.parquet"
    )
    parser.add_argument("--n-train", type=int, default=512, help="first N training rows")
    parser.add_argument("--n-test", type=int, default=500, help="first N test rows")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds of both trainers with seeds seed, seed+1, ...; the order alternates, "
        "times are summed and Macro-F1 averaged",
    )
    parser.add_argument(
        "--hf-sampling",
        choices=["random", "group_by_length"],
        default="random",
        help="the Trainer's train_sampling_strategy; 'random' is the documented default",
    )
    return parser.parse_args(argv)


def load_split(path: Path, n: int) -> tuple[Split, dict[int, str]]:
    """First `n` rows of a Parquet split, and the label id -> name map seen in them."""
    frame = pd.read_parquet(path, columns=["text", "label", "label_id"]).head(n)
    names = dict(zip(frame["label_id"].astype(int), frame["label"].astype(str), strict=True))
    split = Split(texts=frame["text"].tolist(), labels=frame["label_id"].astype(int).tolist())
    return split, names


def load_data(args: argparse.Namespace) -> BenchData:
    """Train and test rows; label ids must mean the same in both files."""
    train, train_names = load_split(args.train_path, args.n_train)
    test, test_names = load_split(args.test_path, args.n_test)
    names = {**train_names, **test_names}
    if any(train_names.get(i, name) != name for i, name in test_names.items()):
        raise ValueError(f"label ids differ between train {train_names} and test {test_names}")
    return BenchData(train=train, test=test, label_names=[names[i] for i in sorted(names)])


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The one set of hyperparameters both trainers use."""
    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        seeds=[args.seed],
    )


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up(model_dir: str, data: BenchData, config: TrainingConfig) -> None:
    """One forward and backward pass, so one-time start-up costs hit neither timed run."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(data.label_names), local_files_only=True
    )
    batch = tokenizer(
        data.train.texts[: config.batch_size],
        truncation=True,
        max_length=config.max_length,
        padding=True,
        return_tensors="pt",
    )
    model(**batch).logits.sum().backward()


def run_llmsynth(
    model_dir: str, data: BenchData, config: TrainingConfig, eval_bs: int
) -> RunResult:
    """Train, time and score llmsynth's trainer."""
    epochs: list[EpochLog] = []
    n_labels = len(data.label_names)
    started = time.perf_counter()
    trained = train_classifier(
        data.train.texts,
        data.train.labels,
        n_labels,
        model_dir,
        config,
        on_epoch=epochs.append,
        label_names=data.label_names,
        device="cpu",
    )
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = trained.predict_proba(data.test.texts, batch_size=eval_bs)
    infer_s = time.perf_counter() - started
    predicted = proba.argmax(axis=1)
    return RunResult(
        name="llmsynth",
        train_s=train_s,
        loop_s=sum(log.seconds for log in epochs),
        infer_s=infer_s,
        macro_f1=macro_f1(np.asarray(data.test.labels), predicted, n_labels),
        peak_rss_mib=peak_rss_mib(),
    )


def hf_arguments(output_dir: str, config: TrainingConfig, eval_bs: int, sampling: str) -> Any:
    """TrainingArguments matching `config`, with no evaluation, saving or reporting."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=eval_bs,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio here
        seed=config.seeds[0],
        train_sampling_strategy=sampling,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
    )


def hf_tokenized(tokenizer: Any, split: Split, max_length: int) -> Any:
    """A `datasets.Dataset` of token ids and labels, built with `Dataset.map` as documented."""
    from datasets import Dataset

    raw = Dataset.from_dict({"text": split.texts, "labels": split.labels})
    return raw.map(
        lambda rows: tokenizer(rows["text"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=["text"],
    )


def run_hf(
    model_dir: str, data: BenchData, config: TrainingConfig, eval_bs: int, sampling: str
) -> RunResult:
    """Train, time and score the plain Hugging Face `Trainer` with `DataCollatorWithPadding`."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        set_seed,
    )

    n_labels = len(data.label_names)
    with tempfile.TemporaryDirectory() as output_dir:
        started = time.perf_counter()
        set_seed(config.seeds[0])
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            num_labels=n_labels,
            id2label=dict(enumerate(data.label_names)),
            label2id={name: i for i, name in enumerate(data.label_names)},
            local_files_only=True,
        )
        trainer = Trainer(
            model=model,
            args=hf_arguments(output_dir, config, eval_bs, sampling),
            train_dataset=hf_tokenized(tokenizer, data.train, config.max_length),
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict would split the table
        loop_started = time.perf_counter()
        trainer.train()
        done = time.perf_counter()
        test_set = hf_tokenized(tokenizer, data.test, config.max_length)
        logits = trainer.predict(test_set).predictions
        infer_s = time.perf_counter() - done
    predicted = np.asarray(logits).argmax(axis=1)
    return RunResult(
        name="hf-trainer",
        train_s=done - started,
        loop_s=done - loop_started,
        infer_s=infer_s,
        macro_f1=macro_f1(np.asarray(data.test.labels), predicted, n_labels),
        peak_rss_mib=peak_rss_mib(),
    )


def combine(runs: Sequence[RunResult]) -> RunResult:
    """One trainer's repeats as one result: times summed, F1 averaged, the highest peak RSS."""
    return RunResult(
        name=runs[0].name,
        train_s=sum(r.train_s for r in runs),
        loop_s=sum(r.loop_s for r in runs),
        infer_s=sum(r.infer_s for r in runs),
        macro_f1=sum(r.macro_f1 for r in runs) / len(runs),
        peak_rss_mib=max(r.peak_rss_mib for r in runs),
    )


def run_rounds(
    model_dir: str, data: BenchData, config: TrainingConfig, args: argparse.Namespace
) -> list[RunResult]:
    """Both trainers `args.repeats` times, swapping the order each round so load drift hits both."""
    runners: dict[str, Callable[[TrainingConfig], RunResult]] = {
        "llmsynth": lambda cfg: run_llmsynth(model_dir, data, cfg, args.eval_batch_size),
        "hf-trainer": lambda cfg: run_hf(
            model_dir, data, cfg, args.eval_batch_size, args.hf_sampling
        ),
    }
    runs: dict[str, list[RunResult]] = {name: [] for name in runners}
    for round_index in range(args.repeats):
        # Each round its own seed, the same for both: Macro-F1 is compared as a mean over
        # seeds, not on one draw of the initialisation and batch order.
        seeded = config.model_copy(update={"seeds": [args.seed + round_index]})
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            runs[name].append(runners[name](seeded))
    return [combine(results) for results in runs.values()]


def table(results: Sequence[RunResult], trained: int, tested: int) -> list[str]:
    """One row per trainer; `trained` and `tested` count examples over all epochs and repeats."""
    rows = [
        f"{'trainer':<11} {'train s':>8} {'train ex/s':>10} {'loop ex/s':>9} "
        f"{'infer ex/s':>10} {'macro-F1':>8} {'peak RSS MiB':>12}"
    ]
    rows += [
        f"{r.name:<11} {r.train_s:>8.1f} {trained / r.train_s:>10.1f} {trained / r.loop_s:>9.1f} "
        f"{tested / r.infer_s:>10.1f} {r.macro_f1:>8.4f} {r.peak_rss_mib:>12.0f}"
        for r in results
    ]
    return rows


def verdict(ours: RunResult, hf: RunResult) -> list[str]:
    """Secondary ratios, both targets, and the headline ratio as the last line."""
    ratio = hf.train_s / ours.train_s
    f1_gap = ours.macro_f1 - hf.macro_f1
    speed_met = "met" if ratio >= SPEED_TARGET else "NOT met"
    f1_met = "met" if f1_gap >= -F1_TOLERANCE else "NOT met"
    return [
        f"loop-only ratio llmsynth/hf-trainer: {hf.loop_s / ours.loop_s:.2f}; "
        f"inference ratio: {hf.infer_s / ours.infer_s:.2f}",
        f"test macro-F1: llmsynth {ours.macro_f1:.4f}, hf-trainer {hf.macro_f1:.4f} "
        f"(gap {f1_gap * 100:+.2f} points)",
        f"speed target (ratio >= {SPEED_TARGET}): {speed_met}",
        f"F1 target (at most {F1_TOLERANCE * 100:.0f} point below hf-trainer): {f1_met}",
        f"training llmsynth/hf-trainer examples-per-second ratio: {ratio:.2f}",
    ]


def report(results: Sequence[RunResult], data: BenchData, args: argparse.Namespace) -> str:
    """The table, what was run, and the verdict, ending with the ratio line."""
    n_train, n_test = len(data.train.texts), len(data.test.texts)
    ours, hf = results
    lines = table(results, n_train * args.epochs * args.repeats, n_test * args.repeats)
    lines += [
        f"train: {n_train} rows x {args.epochs} epochs x {args.repeats} repeats, batch "
        f"{args.batch_size}, max_length {args.max_length}, hf sampling {args.hf_sampling}; "
        f"test: {n_test} rows",
        "train s = model load + tokenize + train loop (loop ex/s: the loop alone); "
        "peak RSS = this process's peak after each trainer's last run",
        *verdict(ours, hf),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run both trainers on the same data and print the comparison."""
    from datasets.utils.logging import disable_progress_bar
    from transformers.utils import logging as hf_logging

    disable_progress_bar()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    args = parse_args(argv)
    data = load_data(args)
    config = training_config(args)
    model_dir = resolve_encoder(ENCODER)
    warm_up(model_dir, data, config)
    results = run_rounds(model_dir, data, config, args)
    print(report(results, data, args))


if __name__ == "__main__":
    main()
