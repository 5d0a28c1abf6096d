"""Prefect tasks stay thin: every `@task` function in tasks/ is at most 40 lines, counted from
its `def` line to its last line, docstring included; the computing belongs in llmsynth_core."""

from __future__ import annotations

import ast
from pathlib import Path

TASKS = Path(__file__).resolve().parents[1] / "tasks"
MAX_LINES = 40


def _is_task(decorator: ast.expr) -> bool:
    """`@task`, `@task(...)`, `@prefect.task` or `@prefect.task(...)`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "task"
    return isinstance(target, ast.Name) and target.id == "task"


def task_lengths(root: Path) -> dict[str, int]:
    """'module.py:function' -> lines from `def` to the end, for every @task function."""
    lengths: dict[str, int] = {}
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _is_task(d) for d in node.decorator_list
            ):
                assert node.end_lineno is not None
                lengths[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return lengths


def test_every_prefect_task_is_at_most_40_lines() -> None:
    lengths = task_lengths(TASKS)
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, (
        f"@task functions over {MAX_LINES} lines (def line to last line): {too_long}. Move the "
        "computing into a pure llmsynth_core function and keep the task to reading inputs, "
        "calling the core and writing the artifact (ArtifactStore.get_or_build)."
    )


def test_the_walk_finds_the_tasks_and_counts_decorated_forms(tmp_path: Path) -> None:
    assert {"generate.py:generate_label_task", "snapshot.py:snapshot_task"} <= set(
        task_lengths(TASKS)
    )
    (tmp_path / "m.py").write_text(
        "from prefect import task\nimport prefect\n\n"
        "@task\ndef a():\n    pass\n\n"
        "@task(name='b')\nasync def b():\n    x = 1\n    return x\n\n"
        "@prefect.task\ndef c():\n    pass\n\n"
        "def plain():\n    pass\n",
        encoding="utf-8",
    )
    assert task_lengths(tmp_path) == {"m.py:a": 2, "m.py:b": 3, "m.py:c": 2}
