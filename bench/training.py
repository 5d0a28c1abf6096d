"""Benchmark: llmsynth's `train_classifier` against the Hugging Face `Trainer`, plain and tuned.

Each run of each side is its own process (bench/training_sides.py), so each peak RSS is its own;
runs interleave with a rotating order and each round uses its own seed on every side. Speed is
compared best run against best run (the median is printed too, and the process CPU seconds,
which load on a shared machine moves far less than wall time), Macro-F1 as the paired per-seed
difference with its interval. `--device cuda` compares speed and peak GPU memory on a randomly
initialised BERT-base-sized encoder.
Run `HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m bench.training` (needs accelerate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.training_sides import PHASES, RESULT_PREFIX, SIDES, RunResult, RunSpec
from bench.training_stats import PairedDifference, Rates, paired_difference, rates, ratio, rotated

REPO = Path(__file__).resolve().parents[1]
# As in tests/conftest.py: LLMSYNTH_DATA_DIR, else the checkout's sibling shared/datasets.
DATASETS = Path(os.environ.get("LLMSYNTH_DATA_DIR") or REPO.parent / "shared" / "datasets")
ENCODER = "embedded:all-MiniLM-L6-v2"
SPEED_TARGET = 1.3
INFERENCE_TARGET = 1.5
# The GPU comparison's encoder: BERT-base's shape, randomly initialised (no weights offline).
BERT_BASE: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
CPU_DEFAULTS = {"n_train": 512, "epochs": 2}
CUDA_DEFAULTS = {"n_train": 4096, "epochs": 1}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; CPU defaults keep the whole benchmark to about 15 minutes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--train-path", type=Path, default=DATASETS / "ag_news" / "train.parquet")
    parser.add_argument(
        "--test-path", type=Path, default=DATASETS / "sample" / "ag_news" / "test.parquet"
    )
    parser.add_argument("--n-train", type=int, help="first N training rows (cpu 512, cuda 4096)")
    parser.add_argument("--n-test", type=int, default=500, help="first N test rows")
    parser.add_argument("--epochs", type=int, help="cpu 2, cuda 1")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="interleaved runs per side; run i uses seed+i on every side (3 or more for the "
        "Macro-F1 interval)",
    )
    parser.add_argument(
        "--sides",
        default=",".join(SIDES),
        help=f"comma-separated subset of {','.join(SIDES)} (llmsynth and hf-tuned are needed "
        "for the headline ratio)",
    )
    parser.add_argument(
        "--hf-compile",
        action="store_true",
        help="hf-tuned also sets torch_compile=True (off by default: on 2 CPU cores its "
        "compile time outweighed what it saved; see bench/README.md)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print time per step phase (collate, forward, backward, optimizer step) "
        "for every side, from process-wide module and optimizer hooks",
    )
    args = parser.parse_args(argv)
    defaults = CUDA_DEFAULTS if args.device == "cuda" else CPU_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.side_list = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = sorted(set(args.side_list) - set(SIDES))
    if unknown or not args.side_list:
        parser.error(f"--sides: unknown {unknown or 'empty list'}; choose from {list(SIDES)}")
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    return args


def cuda_refusal() -> str | None:
    """Why `--device cuda` cannot run here, or None when torch sees a CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return None
    build = torch.version.cuda or "none (a CPU-only build)"
    return (
        f"bench.training --device cuda needs a CUDA GPU, and torch {torch.__version__} sees "
        f"none (its CUDA version: {build}). Run it on a GPU host with a CUDA build of torch, or "
        "leave out --device cuda for the CPU comparison."
    )


def bert_base_dir(tokenizer_dir: str, target: Path, seed: int) -> str:
    """A randomly initialised BERT-base-sized classifier encoder with the tokenizer of
    `tokenizer_dir`, saved in `target`; every side loads the same initial weights from it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    config = BertConfig(vocab_size=len(tokenizer), intermediate_size=3072, **BERT_BASE)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return str(target)


def spec_for(args: argparse.Namespace, side: str, seed: int, model_dir: str) -> RunSpec:
    return RunSpec(
        side=side,
        device=args.device,
        seed=seed,
        model_dir=model_dir,
        train_path=str(args.train_path),
        test_path=str(args.test_path),
        n_train=args.n_train,
        n_test=args.n_test,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
        hf_compile=args.hf_compile,
        profile=args.profile,
        score=args.device == "cpu",
    )


def run_side(spec: RunSpec) -> RunResult:
    """Run one side in a fresh interpreter and read back its result line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), *sys.path]))}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.training_sides", json.dumps(asdict(spec))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"{spec.side} (seed {spec.seed}) failed with exit code {completed.returncode}:\n"
            f"{completed.stderr[-4000:]}"
        )
    return RunResult(**json.loads(lines[-1][len(RESULT_PREFIX) :]))


def run_all(args: argparse.Namespace, model_dir: str) -> dict[str, list[RunResult]]:
    """`args.runs` rounds of every side, the order rotating each round; round i uses seed+i."""
    results: dict[str, list[RunResult]] = {side: [] for side in args.side_list}
    for round_index in range(args.runs):
        seed = args.seed + round_index
        for side in rotated(args.side_list, round_index):
            result = run_side(spec_for(args, side, seed, model_dir))
            results[side].append(result)
            print(
                f"  run {round_index + 1}/{args.runs} {side}: train {result.train_s:.1f} s "
                f"({result.train_cpu_s:.1f} CPU s), peak RSS {result.peak_rss_mib:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    return results


def side_rates(runs: Sequence[RunResult], examples: int) -> Rates:
    return rates(examples, [r.train_s for r in runs])


def table(results: dict[str, list[RunResult]], trained: int, tested: int, cuda: bool) -> list[str]:
    """One row per side: training ex/s (best, median), loop ex/s (best), the least CPU seconds
    of a training run, inference ex/s (best), mean Macro-F1 and the median run's peak memory."""
    memory = "peak GPU MiB" if cuda else "peak RSS MiB"
    rows = [
        f"{'side':<9} {'precision':<14} {'train ex/s':>10} {'median':>7} {'loop ex/s':>9} "
        f"{'CPU s':>6} {'infer ex/s':>10} {'macro-F1':>8} {memory:>12}"
    ]
    for side, runs in results.items():
        train = side_rates(runs, trained)
        loop = rates(trained, [r.loop_s for r in runs]).best
        infer = "-"
        infer_times = [r.infer_s for r in runs if r.infer_s]
        if infer_times:
            infer = f"{rates(tested, infer_times).best:.1f}"
        scores = [r.macro_f1 for r in runs if r.macro_f1 is not None]
        f1 = f"{sum(scores) / len(scores):.4f}" if scores else "-"
        peak = statistics.median((r.peak_gpu_mib if cuda else r.peak_rss_mib) or 0.0 for r in runs)
        rows.append(
            f"{side:<9} {runs[0].train_precision:<14} {train.best:>10.1f} {train.median:>7.1f} "
            f"{loop:>9.1f} {min(r.train_cpu_s for r in runs):>6.1f} {infer:>10} {f1:>8} "
            f"{peak:>12.0f}"
        )
    return rows


PHASE_LABELS = {
    "tokenise": "tokenise (once; per step)",
    "collate": "collate + loop overhead",
    "forward": "forward (incl. loss)",
    "backward": "backward + grad clip",
    "optimizer": "optimizer step",
    "other": "other (epoch ends, ...)",
}


def profile_table(results: dict[str, list[RunResult]]) -> list[str]:
    """Milliseconds per training step in each phase, over all of a side's runs: wall time, then
    the process's CPU time (all threads) in the four hooked phases, which load moves less."""
    wall: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    for side, runs in results.items():
        steps = sum(r.phase_steps for r in runs) or 1
        loop = sum(r.loop_s for r in runs)
        phases = {name: sum((r.phases or {}).get(name, 0.0) for r in runs) for name in PHASES}
        row = {"tokenise": sum(r.tokenise_s for r in runs), **phases}
        row["other"] = loop - sum(phases.values())
        row["step total"] = loop + row["tokenise"]
        wall[side] = {name: seconds / steps * 1000 for name, seconds in row.items()}
        cpu_row = {name: sum((r.cpu_phases or {}).get(name, 0.0) for r in runs) for name in PHASES}
        cpu_row["phases total"] = sum(cpu_row.values())
        cpu[side] = {name: seconds / steps * 1000 for name, seconds in cpu_row.items()}
    return [
        *_phase_rows("phase (wall ms/step)", wall, [*PHASE_LABELS, "step total"]),
        *_phase_rows("phase (CPU ms/step)", cpu, [*PHASES, "phases total"]),
    ]


def _phase_rows(title: str, per_side: dict[str, dict[str, float]], names: list[str]) -> list[str]:
    sides = list(per_side)
    lines = [f"{title:<27}" + "".join(f"{side:>10}" for side in sides)]
    for name in names:
        cells = "".join(f"{per_side[side][name]:>10.1f}" for side in sides)
        lines.append(f"{PHASE_LABELS.get(name, name):<27}{cells}")
    return lines


def f1_line(name: str, diff: PairedDifference, boot: tuple[float, float] | None) -> str:
    verdict = "met" if diff.acceptable else "NOT met"
    bootstrap = ""
    if boot is not None:
        bootstrap = f"; paired bootstrap over seeds and test rows {boot[0]:+.4f}..{boot[1]:+.4f}"
    return (
        f"paired Macro-F1 difference llmsynth - {name} over {diff.n} seeds: {diff.mean:+.4f} "
        f"(95% t interval {diff.low:+.4f}..{diff.high:+.4f}{bootstrap}; includes 0 or favours "
        f"llmsynth: {verdict})"
    )


def bootstrap_gap(
    ours: Sequence[RunResult], theirs: Sequence[RunResult], truth: Sequence[int], n_labels: int
) -> tuple[float, float]:
    """The project's paired bootstrap (test rows and seeds resampled together) of the gap."""
    import numpy as np

    from llmsynth_core.uncertainty import paired_gap

    gap = paired_gap(
        truth,
        np.array([r.predictions for r in ours]),
        np.array([[r.predictions] for r in theirs]),
        n_labels,
    )
    return gap.low, gap.high


def verdict(
    results: dict[str, list[RunResult]],
    args: argparse.Namespace,
    truth: Sequence[int] | None,
    n_labels: int,
) -> list[str]:
    """Memory, inference, Macro-F1 and speed lines; the headline ratio (against hf-tuned, best
    of each) last."""
    trained = args.n_train * args.epochs
    lines: list[str] = []
    ours = results.get("llmsynth")
    memory_field = "peak_gpu_mib" if args.device == "cuda" else "peak_rss_mib"
    # The median run's peak: one side's peak RSS moved by 140 MiB between its runs here.
    peaks = {
        side: [getattr(r, memory_field) or 0.0 for r in runs] for side, runs in results.items()
    }
    medians = {side: statistics.median(values) for side, values in peaks.items()}
    peak_text = ", ".join(
        f"{side} {medians[side]:.0f} (highest {max(values):.0f})" for side, values in peaks.items()
    )
    memory_name = "peak GPU" if args.device == "cuda" else "peak RSS"
    memory_line = f"{memory_name} MiB, each side's own process, median run: {peak_text}"
    if ours and "hf-tuned" in peaks:
        memory_line += (
            f"; llmsynth not above hf-tuned: "
            f"{'met' if medians['llmsynth'] <= medians['hf-tuned'] else 'NOT met'}"
        )
    lines.append(memory_line)
    if ours is None:
        return lines
    if args.device == "cpu":
        lines += inference_lines(results, args.n_test)
        for name in ("hf-tuned", "hf-plain"):
            if name in results and truth is not None:
                diff = paired_difference(
                    [r.macro_f1 or 0.0 for r in ours], [r.macro_f1 or 0.0 for r in results[name]]
                )
                boot = bootstrap_gap(ours, results[name], truth, n_labels) if diff.n > 1 else None
                lines.append(f1_line(name, diff, boot))
    mine = side_rates(ours, trained)
    if "hf-plain" in results:
        plain = ratio(mine, side_rates(results["hf-plain"], trained))
        lines.append(
            f"training llmsynth/hf-plain examples-per-second ratio: {plain.best:.2f} "
            f"(median runs {plain.median:.2f})"
        )
    if "hf-tuned" in results:
        tuned = ratio(mine, side_rates(results["hf-tuned"], trained))
        met = "met" if tuned.best >= SPEED_TARGET else "NOT met"
        ours_cpu = min(r.train_cpu_s for r in ours)
        if ours_cpu > 0:
            cpu = min(r.train_cpu_s for r in results["hf-tuned"]) / ours_cpu
            lines.append(
                f"training CPU-seconds hf-tuned/llmsynth (least of each; load moves it less "
                f"than wall time): {cpu:.2f}"
            )
        lines.append(f"median runs llmsynth/hf-tuned ratio: {tuned.median:.2f}")
        lines.append(f"speed target (ratio >= {SPEED_TARGET} against hf-tuned): {met}")
        lines.append(f"training llmsynth/hf-trainer examples-per-second ratio: {tuned.best:.2f}")
    return lines


def inference_lines(results: dict[str, list[RunResult]], tested: int) -> list[str]:
    """llmsynth's inference against each Trainer's `predict`, flagged where precisions differ;
    the target applies to the same precision."""
    ours = results["llmsynth"]
    mine = rates(tested, [r.infer_s or 0.0 for r in ours])
    lines = []
    for name in ("hf-plain", "hf-tuned"):
        if name not in results:
            continue
        runs = results[name]
        theirs = rates(tested, [r.infer_s or 0.0 for r in runs])
        same = runs[0].infer_precision == ours[0].infer_precision
        verdict_text = (
            f"target >= {INFERENCE_TARGET}: "
            f"{'met' if mine.best / theirs.best >= INFERENCE_TARGET else 'NOT met'}"
            if same
            else "different precisions, no target"
        )
        # CPU seconds, theirs over ours (least of each): load moves them less than wall time.
        cpu = ""
        ours_cpu = min(r.infer_cpu_s or 0.0 for r in ours)
        theirs_cpu = min(r.infer_cpu_s or 0.0 for r in runs)
        if ours_cpu > 0 and theirs_cpu > 0:
            cpu = f"; CPU seconds {theirs_cpu / ours_cpu:.2f}"
        lines.append(
            f"inference llmsynth ({ours[0].infer_precision}) / {name} Trainer.predict "
            f"({runs[0].infer_precision}): {mine.best / theirs.best:.2f} (median runs "
            f"{mine.median / theirs.median:.2f}{cpu}; {verdict_text})"
        )
    return lines


def describe(args: argparse.Namespace) -> list[str]:
    """What ran, in two lines."""
    seeds = f"{args.seed}..{args.seed + args.runs - 1}"
    compile_note = "torch_compile" if args.hf_compile else "no torch_compile"
    return [
        f"train: first {args.n_train} rows x {args.epochs} epochs, batch {args.batch_size}, "
        f"max_length {args.max_length}; test: first {args.n_test} rows; {args.runs} "
        f"interleaved runs per side, each its own process, seeds {seeds}; device {args.device}",
        "hf-plain: Trainer defaults (fp32, random sampling); hf-tuned: bf16 where llmsynth "
        f"uses it, group_by_length with precomputed lengths, adamw_torch_fused, {compile_note}; "
        "both pre-tokenised. train ex/s: model load + training (best run; median next)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run every side, print the comparison; 2 when --device cuda has no GPU to run on."""
    args = parse_args(argv)
    if args.device == "cuda":
        reason = cuda_refusal()
        if reason is not None:
            print(reason, file=sys.stderr)
            return 2
    from tasks.encoders import resolve_encoder

    encoder_dir = resolve_encoder(ENCODER)
    truth: list[int] | None = None
    n_labels = 0
    if args.device == "cpu":
        from bench.training_sides import load_data

        data = load_data(args.train_path, args.test_path, args.n_train, args.n_test)
        truth, n_labels = data.test.labels, len(data.label_names)
    with tempfile.TemporaryDirectory(prefix="llmsynth-bench-") as scratch:
        model_dir = encoder_dir
        if args.device == "cuda":
            model_dir = bert_base_dir(encoder_dir, Path(scratch) / "bert-base", args.seed)
        results = run_all(args, model_dir)
    lines = table(results, args.n_train * args.epochs, args.n_test, args.device == "cuda")
    lines += describe(args)
    if args.profile:
        lines += profile_table(results)
    lines += verdict(results, args, truth, n_labels)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
