"""bench/training.py's pure parts: best/median rates and ratios, the paired Macro-F1 interval,
the run order, argument handling, the report's verdict lines, the step-phase clock on a real
(tiny) torch loop, and the refusal of --device cuda where torch sees no GPU. No timings."""

from __future__ import annotations

import math

import pytest

from bench import training as bench
from bench.training_sides import PhaseClock, RunResult, phase_hooks
from bench.training_stats import paired_difference, rates, ratio, rotated


def _result(side: str, seed: int, train_s: float, **extra: object) -> RunResult:
    fields: dict[str, object] = {
        "side": side,
        "seed": seed,
        "train_s": train_s,
        "train_cpu_s": train_s * 2,
        "loop_s": train_s - 1.0,
        "steps": 10,
        "infer_s": 2.0,
        "infer_cpu_s": 4.0,
        "macro_f1": 0.8,
        "predictions": [0, 1, 1, 0],
        "peak_rss_mib": 1000.0,
        "peak_gpu_mib": None,
        "train_precision": "fp32",
        "infer_precision": "fp32",
        "tokenise_s": 0.1,
        "phases": None,
        "phase_steps": 0,
    }
    fields.update(extra)
    return RunResult(**fields)  # type: ignore[arg-type]


def test_rates_take_best_and_median_run() -> None:
    summary = rates(100, [10.0, 5.0, 20.0])
    assert summary.best == 20.0  # 100 examples in 5 s
    assert summary.median == 10.0
    both = ratio(summary, rates(100, [10.0, 10.0, 25.0]))
    assert both.best == pytest.approx(2.0)
    assert both.median == pytest.approx(1.0)


def test_rates_refuse_empty_or_zero_durations() -> None:
    with pytest.raises(ValueError, match="positive duration"):
        rates(10, [])
    with pytest.raises(ValueError, match="positive duration"):
        rates(10, [1.0, 0.0])


def test_paired_difference_is_a_t_interval_of_the_per_seed_gaps() -> None:
    diff = paired_difference([0.81, 0.80, 0.82], [0.80, 0.81, 0.82])
    # Gaps +0.01, -0.01, 0: mean 0, sd 0.01, t(0.975, 2 df) = 4.3027.
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert diff.mean == pytest.approx(0.0, abs=1e-12)
    assert (diff.low, diff.high) == pytest.approx((-half, half), rel=1e-5)
    assert diff.acceptable and diff.n == 3


def test_paired_difference_flags_a_consistent_loss_and_accepts_a_gain() -> None:
    worse = paired_difference([0.70, 0.71, 0.72], [0.80, 0.80, 0.81])
    assert worse.high < 0 and not worse.acceptable
    better = paired_difference([0.90, 0.91, 0.92], [0.80, 0.80, 0.81])
    assert better.low > 0 and better.acceptable


def test_paired_difference_edge_cases() -> None:
    one = paired_difference([0.8], [0.7])
    assert one.mean == pytest.approx(0.1) and math.isinf(one.low) and math.isinf(one.high)
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_difference([0.8, 0.7], [0.8])


def test_rotation_puts_every_side_in_every_position() -> None:
    sides = ["a", "b", "c"]
    orders = [rotated(sides, i) for i in range(3)]
    assert orders[0] == sides
    for position in range(3):
        assert sorted(order[position] for order in orders) == sides


def test_arguments_fill_device_defaults_and_check_sides() -> None:
    cpu = bench.parse_args([])
    assert (cpu.device, cpu.n_train, cpu.epochs, cpu.runs) == ("cpu", 512, 2, 3)
    assert cpu.side_list == ["llmsynth", "hf-tuned", "hf-plain"]
    cuda = bench.parse_args(["--device", "cuda", "--epochs", "3"])
    assert (cuda.n_train, cuda.epochs) == (4096, 3)
    assert bench.parse_args(["--sides", "llmsynth, hf-tuned"]).side_list == [
        "llmsynth",
        "hf-tuned",
    ]
    with pytest.raises(SystemExit):
        bench.parse_args(["--sides", "llmsynth,sklearn"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--runs", "0"])


def test_verdict_ends_with_the_headline_ratio_against_the_tuned_trainer() -> None:
    args = bench.parse_args(["--n-train", "100", "--epochs", "1", "--n-test", "4"])
    results = {
        "llmsynth": [
            _result("llmsynth", 42 + i, t, peak_rss_mib=900.0)
            for i, t in enumerate([10.0, 8.0, 9.0])
        ],
        "hf-tuned": [_result("hf-tuned", 42 + i, t) for i, t in enumerate([12.0, 13.0, 14.0])],
        "hf-plain": [_result("hf-plain", 42 + i, t) for i, t in enumerate([30.0, 20.0, 25.0])],
    }
    lines = bench.verdict(results, args, truth=[0, 1, 1, 0], n_labels=2)
    assert lines[-1] == "training llmsynth/hf-trainer examples-per-second ratio: 1.50"  # 12/8
    assert "llmsynth/hf-plain examples-per-second ratio: 2.50" in "\n".join(lines)  # 20/8
    assert "training CPU-seconds hf-tuned/llmsynth (least of each" in lines[-4]
    assert lines[-4].endswith(": 1.50")  # 24/16
    assert any("not above hf-tuned: met" in line for line in lines)
    assert any(line.startswith("paired Macro-F1 difference llmsynth - hf-tuned") for line in lines)
    assert any("inference llmsynth (fp32) / hf-plain" in line and "met" in line for line in lines)
    assert any("CPU seconds 1.00; target" in line for line in lines)
    assert "median run: llmsynth 1000 (highest 1000)" not in "\n".join(lines)
    assert "median run: llmsynth 900 (highest 900), hf-tuned 1000" in "\n".join(lines)


def test_profile_table_splits_each_step_in_wall_and_cpu_time() -> None:
    phases = {"collate": 0.5, "forward": 2.0, "backward": 3.0, "optimizer": 1.0}
    cpu = {name: 2 * seconds for name, seconds in phases.items()}
    runs = {
        "llmsynth": [_result("llmsynth", 42, 10.0, phases=phases, cpu_phases=cpu, phase_steps=10)]
    }
    lines = bench.profile_table(runs)
    assert lines[0].startswith("phase (wall ms/step)") and lines[0].split()[-1] == "llmsynth"
    split = lines.index(next(line for line in lines if line.startswith("phase (CPU")))
    wall = {line[:27].strip(): float(line[27:]) for line in lines[1:split]}
    assert wall["forward (incl. loss)"] == pytest.approx(200.0)
    assert wall["other (epoch ends, ...)"] == pytest.approx(250.0)  # 9 s loop - 6.5 s, per step
    assert wall["step total"] == pytest.approx(910.0)  # loop + tokenise
    cpu_rows = {line[:27].strip(): float(line[27:]) for line in lines[split + 1 :]}
    assert cpu_rows["forward (incl. loss)"] == pytest.approx(400.0)
    assert cpu_rows["phases total"] == pytest.approx(1300.0)


def test_phase_clock_times_training_steps_but_not_inference() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    clock = PhaseClock()
    with phase_hooks(clock):
        for _ in range(3):
            model(torch.randn(5, 4)).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        model(torch.randn(5, 4))
    model.train()
    model(torch.randn(5, 4))  # after the block: hooks removed
    assert clock.steps == 3
    assert all(seconds > 0 for seconds in clock.totals.values())
    assert all(seconds >= 0 for seconds in clock.cpu_totals.values())
    assert sum(clock.cpu_totals.values()) > 0


def test_cuda_is_refused_with_a_reason_where_torch_sees_no_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a CUDA GPU, so --device cuda runs")
    assert bench.main(["--device", "cuda"]) == 2
    message = capsys.readouterr().err
    assert "needs a CUDA GPU" in message and torch.__version__ in message


@pytest.mark.training
@pytest.mark.data
def test_a_tiny_run_of_two_sides_prints_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    """End to end on 16 rows: each side in its own process, the profile, the verdict."""
    argv = ["--runs", "1", "--n-train", "16", "--n-test", "16", "--epochs", "1", "--profile"]
    assert bench.main([*argv, "--sides", "llmsynth,hf-tuned"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("training llmsynth/hf-trainer examples-per-second")
    for text in ("phase (wall ms/step)", "phase (CPU ms/step)", "training CPU-seconds"):
        assert text in out
    assert "inference llmsynth (fp32) / hf-tuned Trainer.predict" in out
