"""The `llmsynth` command line: a thin shell over the registry and the flows."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmsynth_core.config import (
    ExperimentConfig,
    GenerationConfig,
    LLMConfig,
    RuntimeConfig,
    load_experiment,
    preset_path,
)
from llmsynth_core.costs import ASSUMED_LATENCY_S, EXPECTED_ATTEMPTS, Estimate, estimate
from llmsynth_core.data import parse_table, validate_split
from llmsynth_core.errors import LlmsynthError, validated
from llmsynth_core.prompts import Example, PromptContext, plan_request
from llmsynth_core.registry import experiment_specs, load_registry
from llmsynth_core.run_layout import RunLayout
from llmsynth_core.taskspec import TaskSpec

app = typer.Typer(
    help="Can I train a text classifier on LLM-generated data? Generate, train, compare, explain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="The task registry.", no_args_is_help=True)
llm_app = typer.Typer(help="The embedded LLMs (llama.cpp server).", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(llm_app, name="llm")
pools_app = typer.Typer(help="Prefect work pools for deployments.", no_args_is_help=True)
app.add_typer(pools_app, name="pools")
data_app = typer.Typer(
    help="Data on an object store, for workers that share no disk.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
console = Console()

TaskDirs = Annotated[
    list[Path] | None,
    typer.Option("--task-dir", help="Extra directory of task spec YAML files (repeatable)."),
]
DataDir = Annotated[
    str | None,
    typer.Option(
        envvar="LLMSYNTH_DATA_DIR",
        help="Directory or object-store URI (s3://bucket/data, see `llmsynth data push`) with "
        "<task>/{train,test}.parquet.",
    ),
]


def _data_dir(value: str | None, required: bool = True) -> str | None:
    """The data directory or URI; a local one must exist (a URI is checked when read)."""
    from tasks.artifacts import is_uri

    if value is None and required:
        raise LlmsynthError(
            "no data directory: pass --data-dir or set LLMSYNTH_DATA_DIR "
            "(e.g. ../shared/datasets, or its sample/ subset)"
        )
    if value is not None and not is_uri(value) and not Path(value).is_dir():
        raise LlmsynthError(f"data directory {value!r} does not exist; fix --data-dir")
    return value


@tasks_app.command("list")
def tasks_list(task_dir: TaskDirs = None) -> None:
    """List the registered tasks, most objective first."""
    registry = load_registry(task_dir or [])
    table = Table(title=f"{len(registry)} tasks", box=box.SIMPLE_HEAD, pad_edge=False)
    # A user copies the id into a config: it is never wrapped or cut; the other columns fold.
    table.add_column("id", no_wrap=True, min_width=max(len(spec.id) for spec in registry.values()))
    table.add_column("name", overflow="fold")
    table.add_column("subjectivity", no_wrap=True)
    table.add_column("labels", overflow="fold")
    table.add_column("domain", overflow="fold")
    for spec in sorted(registry.values(), key=lambda s: (s.subjectivity, s.id)):
        labels = ", ".join(spec.label_names)
        table.add_row(
            Text(spec.id),
            Text(spec.name),
            "★" * spec.subjectivity,
            Text(labels if len(labels) < 60 else labels[:57] + "..."),
            Text(spec.domain),
        )
    console.print(table)


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="Task id, e.g. ag_news.")],
    label: Annotated[str | None, typer.Option(help="Label to render prompts for.")] = None,
    task_dir: TaskDirs = None,
    data_dir: DataDir = None,
) -> None:
    """Show a task and example rendered prompts of both styles (chat and completion)."""
    registry = load_registry(task_dir or [])
    if task_id not in registry:
        raise LlmsynthError(f"unknown task {task_id!r}; known: {sorted(registry)}")
    spec = registry[task_id]
    chosen = label or spec.label_names[0]
    spec.label(chosen)
    console.print(Panel(f"[bold]{spec.name}[/] ({spec.id})\n{spec.description}", expand=False))
    console.print(
        f"domain: {spec.domain}; subjectivity {spec.subjectivity}/5; "
        f"prompt version {spec.prompts.version}"
    )
    for item in spec.labels:
        console.print(f"  • [bold]{item.name}[/]: {item.description}")
    examples = _examples(spec, chosen, _data_dir(data_dir, required=False))
    for style in ("chat", "completion"):
        for mode in ("zero_shot", "few_shot"):
            ctx = PromptContext(
                spec, LLMConfig(prompt_style=style), GenerationConfig(), mode, chosen, examples
            )
            request = plan_request(ctx, 0).request
            body = (
                "\n\n".join(f"[{m.role}]\n{m.content}" for m in request.messages)
                if style == "chat"
                else request.prompt or ""
            )
            console.print(Panel(Text(body), title=f"{style} / {mode} / {chosen}", expand=False))


def _examples(spec: TaskSpec, label: str, data_dir: str | None) -> list[Example]:
    if data_dir is not None:
        from tasks.snapshot import read_data_file, split_location

        location = split_location(spec, data_dir, "train")
        try:
            train = validate_split(parse_table(read_data_file(location), location), spec, location)
        except LlmsynthError:
            train = None
        if train is not None:
            pool = train[train["label"] == label].head(20)
            return [
                Example(id=str(i), text=t) for i, t in zip(pool.index, pool["text"], strict=True)
            ]
    return [Example(id=f"placeholder-{i}", text=f"<a real {label} example {i}>") for i in range(3)]


Preset = Annotated[str | None, typer.Option(help="Named preset: quick or paper.")]
ConfigFile = Annotated[Path | None, typer.Option(help="Experiment YAML file.")]
OutputDir = Annotated[
    str,
    typer.Option(
        envvar="LLMSYNTH_OUTPUT_DIR",
        help="Where artifacts and runs go (content-addressed): a directory or an fsspec URI "
        "such as s3://bucket/llmsynth.",
    ),
]
MaxCost = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        help="Budget cap in USD (overrides runtime.max_cost_usd); the run stops cleanly before "
        "passing it, and a rerun with a higher cap resumes.",
    ),
]


StateDb = Annotated[
    str | None,
    typer.Option(
        help="Database of the request cache and the budget (overrides LLMSYNTH_STATE_DB and "
        "runtime.state_db): postgresql+psycopg://USER@HOST:PORT/DB shares both with every "
        "process and host that uses it (password in PGPASSWORD or PGPASSFILE, never here).",
    ),
]


BatchMode = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="Generate through the endpoint's Batch API at llm.batch_price_factor of the price "
        "(runtime.batch); batches take up to 24 h, and the run waits for them.",
    ),
]


def _with_runtime(
    experiment: ExperimentConfig,
    max_cost: float | None,
    state_db: str | None,
    batch: bool = False,
) -> ExperimentConfig:
    """The experiment with the command line's runtime settings, validated like the file's."""
    updates: dict[str, Any] = {
        "max_cost_usd": max_cost,
        "state_db": state_db,
        "batch": True if batch else None,
    }
    updates = {key: value for key, value in updates.items() if value is not None}
    if not updates:
        return experiment
    raw = experiment.runtime.model_dump(mode="json") | updates
    runtime = validated(RuntimeConfig, raw, "the command line")
    if state_db is not None:
        from tasks.state_db import STATE_DB_ENV

        # The flag names the database for this run's tasks too, which read the variable first.
        os.environ[STATE_DB_ENV] = state_db
    return experiment.model_copy(update={"runtime": runtime})


@app.command()
def run(
    preset: Preset = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    output_dir: OutputDir = "llmsynth-output",
    max_cost: MaxCost = None,
    state_db: StateDb = None,
    batch: BatchMode = False,
) -> None:
    """Run an experiment end to end: generate, train, evaluate, analyse."""
    experiment, data = _prepare(preset, config, data_dir, max_cost, state_db, batch)
    from flows.local_server import ensure_local_server
    from flows.pipeline import pipeline
    from flows.summary import print_summary
    from tasks.progress import reporter
    from tasks.report import load_run
    from tasks.run_dir import RunDir

    ensure_local_server()
    with reporter.live(console):
        run_dir = pipeline(experiment, data, output_dir)
    # The compact answer here; every table is in the report and results.md beside it.
    finished = RunDir(run_dir)
    print_summary(console, load_run(finished), finished.uri(RunLayout.REPORT_HTML))
    console.print(f"[bold green]done[/]: results in {run_dir}", highlight=False, soft_wrap=True)


@app.command()
def generate(
    preset: Preset = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    output_dir: OutputDir = "llmsynth-output",
    max_cost: MaxCost = None,
    state_db: StateDb = None,
    batch: BatchMode = False,
    export_to: Annotated[
        Path | None,
        typer.Option("--export", help="Also save a Hugging Face datasets DatasetDict here."),
    ] = None,
) -> None:
    """Generate the synthetic data only (no training); prints volume, drops and cost."""
    experiment, data = _prepare(preset, config, data_dir, max_cost, state_db, batch)
    from flows.generate import generate as generate_flow
    from flows.local_server import ensure_local_server
    from tasks.progress import reporter
    from tasks.run_dir import RunDir

    ensure_local_server()
    with reporter.live(console):
        run_dir = generate_flow(experiment, data, output_dir)
    console.print(_volume_table(RunDir(run_dir).read_json(RunLayout.GENERATION)))
    if export_to is not None:
        from tasks.export import export_dataset

        export_dataset(Path(run_dir), export_to)
        console.print(f"Hugging Face dataset saved to {export_to}")
    written = f"{RunLayout.SYNTHETIC.name} and {RunLayout.REJECTS.name}"
    console.print(f"[bold green]done[/]: {written} in {run_dir}", highlight=False)


@app.command("export")
def export_command(
    run_dir: Annotated[
        Path, typer.Argument(help=f"A run directory holding {RunLayout.SYNTHETIC.name}.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Save a datasets.DatasetDict here (load_from_disk).")
    ] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Also push it, private, to this Hub repo (needs HF_TOKEN and network)."),
    ] = None,
) -> None:
    """Export a run's accepted synthetic rows as a Hugging Face dataset, one split per task/mode."""
    from tasks.export import export_dataset

    dataset = export_dataset(run_dir, out, push_to_hub)
    for split, rows in dataset.num_rows.items():
        console.print(f"{split}: {rows:,} rows")
    if out is not None:
        console.print(f"saved to {out}; load it with datasets.load_from_disk({str(out)!r})")


@app.command("report")
def report_command(
    run_dir: Annotated[
        Path, typer.Argument(help=f"A run directory holding {RunLayout.RESULTS.name}.")
    ],
    png: Annotated[
        Path | None,
        typer.Option(
            help=f"Also render {RunLayout.REPORT_HTML.name} to this PNG in headless Chromium."
        ),
    ] = None,
) -> None:
    """Write results.md, report.md (figures in report-files/) and report.html for a run."""
    from tasks.report import write_report

    markdown, page = write_report(run_dir)
    console.print(f"wrote {markdown} and {page}", highlight=False)
    if png is not None:
        from tasks.screenshot import html_to_png

        console.print(f"rendered {html_to_png(page, png)}", highlight=False)


@app.command("publish")
def publish_command(
    run_dir: Annotated[
        Path, typer.Argument(help=f"A run directory holding {RunLayout.REPORT_MD.name}.")
    ],
    dest: Annotated[Path, typer.Argument(help="Where to put it, e.g. docs/study.")],
    note: Annotated[
        list[str] | None,
        typer.Option(help="A line for the cover page, e.g. 'Wall time: 84 min' (repeatable)."),
    ] = None,
) -> None:
    """Copy a run's report.md, results.md and figures to DEST with a cover page (README.md)
    naming the run, its commit, the machine and your notes: a run to commit and share."""
    from tasks.report import publish_report

    readme = publish_report(run_dir, dest, note or [])
    console.print(f"published {run_dir.name} to {dest} (cover page {readme})", highlight=False)


def _prepare(
    preset: str | None,
    config: Path | None,
    data_dir: str | None,
    max_cost: float | None,
    state_db: str | None,
    batch: bool = False,
) -> tuple[ExperimentConfig, str]:
    """The experiment (with any --max-cost, --state-db and --batch applied) and its data
    directory, announced."""
    experiment = _with_runtime(_experiment(preset, config), max_cost, state_db, batch)
    data = _data_dir(data_dir)
    assert data is not None
    cap = experiment.runtime.max_cost_usd
    console.print(
        f"[bold]llmsynth[/] experiment [cyan]{experiment.name}[/] "
        f"(config hash {experiment.semantic_hash()}) on {data}"
        + (f", budget cap ${cap:g}" if cap is not None else "")
        + (", through the Batch API" if experiment.runtime.batch else "")
    )
    return experiment, data


def _volume_table(volume: dict[str, Any]) -> Table:
    table = Table(title="generation volume")
    for header in ("task", "mode", "label", "accepted", "requests", "drops", "USD"):
        table.add_column(
            header, justify="right" if header in ("accepted", "requests", "USD") else "left"
        )
    for row in volume["labels"]:
        accepted = f"{row['accepted']}/{row['target']}"
        style = "red" if row["shortfall"] else None
        table.add_row(
            row["task"],
            row["mode"],
            row["label"],
            accepted,
            str(row["requests"]),
            row["drops"],
            f"{row['cost_usd']:.4f}",
            style=style,
        )
    return table


@app.command("estimate")
def estimate_command(
    preset: Preset = None,
    config: ConfigFile = None,
    latency_s: Annotated[
        float, typer.Option(min=0.01, help="Assumed seconds per request when no rate limit binds.")
    ] = ASSUMED_LATENCY_S,
) -> None:
    """Estimate generation requests, tokens, dollars and hours before spending any."""
    experiment = _experiment(preset, config)
    result = estimate(experiment, experiment_specs(experiment), latency_s=latency_s)
    runtime, llm = experiment.runtime, experiment.llm
    pace = {
        "concurrency": f"runtime.concurrency={runtime.concurrency} per label chunk, "
        f"runtime.parallel_chunks={runtime.parallel_chunks} chunks at once, "
        f"{latency_s:g} s per request",
        "requests_per_minute": f"runtime.requests_per_minute={runtime.requests_per_minute}",
        "tokens_per_minute": f"runtime.tokens_per_minute={runtime.tokens_per_minute}",
    }[result.pace]
    console.print(_estimate_table(experiment, result))
    console.print(f"about [bold]{result.hours:,.2f} h[/] of generation, paced by {pace}")
    console.print(
        f"An upper bound per request (replies at llm.max_tokens={llm.max_tokens} or a task "
        "spec's own prompts.max_tokens, tokens as characters / 4) times "
        f"{EXPECTED_ATTEMPTS:g} requests per accepted example, at "
        f"${llm.input_price_per_mtok:g} in and ${llm.output_price_per_mtok:g} out per million "
        "tokens (llm.input_price_per_mtok, llm.output_price_per_mtok).",
        highlight=False,
    )
    turns = experiment.generation.conversation_length
    console.print(
        f"USD --batch: through the endpoint's Batch API at llm.batch_price_factor="
        f"{llm.batch_price_factor:g} of these prices. Hours do not apply: every label waits on "
        "its own batches at once, each within the 24 h completion window (usually far sooner); "
        f"a label takes one batch per round, {turns} rounds for a zero-shot chat (one per turn "
        "of its conversations), then one per follow-up for its shortfall.",
        highlight=False,
    )


def _estimate_table(experiment: ExperimentConfig, result: Estimate) -> Table:
    factor = experiment.llm.batch_price_factor
    rows = [
        (
            line.task,
            line.mode,
            f"{line.requests:,}",
            f"{line.input_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.usd:,.2f}",
            f"{line.usd * factor:,.2f}",
        )
        for line in result.lines
    ]
    total = (
        "total",
        "",
        f"{result.requests:,}",
        f"{result.input_tokens:,}",
        f"{result.output_tokens:,}",
        f"{result.usd:,.2f}",
        f"{result.batch_usd(experiment.llm):,.2f}",
    )
    table = Table(title=f"generation estimate for {experiment.name}")
    table.add_column("task", overflow="fold")
    table.add_column("mode", no_wrap=True)
    # Numbers are never cut short; the task column folds instead on narrow terminals.
    headers = ("requests", "in tokens", "out tokens", "USD", "USD --batch")
    for i, header in enumerate(headers, start=2):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(total[i]))
    for row in rows:
        table.add_row(*row)
    table.add_section()
    table.add_row(*total, style="bold")
    return table


def _experiment(preset: str | None, config: Path | None) -> ExperimentConfig:
    if (preset is None) == (config is None):
        raise LlmsynthError("give exactly one of --preset NAME or --config FILE")
    return load_experiment(preset_path(preset) if preset else config)  # type: ignore[arg-type]


@llm_app.command("serve")
def llm_serve(
    model: Annotated[
        str, typer.Argument(help="smollm2-135m-instruct (chat) or gemma3-270m (base).")
    ] = "smollm2-135m-instruct",
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; 0.0.0.0 only inside a private container network."),
    ] = "127.0.0.1",
) -> None:
    """Serve an embedded model on an OpenAI-compatible endpoint until Ctrl-C."""
    from tasks import llm_server as server

    port = port or server.DEFAULT_PORTS.get(model, 8765)
    process = server.start_server(model, port, server.default_cache_dir(), host=host)
    try:
        server.wait_ready(process, port, model)
        console.print(f"serving [bold]{model}[/] at {server.base_url(port)} (Ctrl-C stops)")
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop_server(process)


@pools_app.command("create")
def pools_create() -> None:
    """Create cpu-pool and gpu-pool (queue `training`) on the server at PREFECT_API_URL."""
    from flows.deploy import POOLS, create_pools

    created = create_pools()
    for pool in POOLS:
        state = "created" if pool.name in created else "exists"
        queues = "".join(f", queue {queue}" for queue in pool.queues)
        console.print(f"{pool.name} ({state}{queues}): {pool.description}", highlight=False)


@app.command("deploy")
def deploy_command(
    crash_after: Annotated[
        int | None,
        typer.Option(
            help="Also create or update the automation that marks an llmsynth flow run Crashed "
            "after this many seconds without a heartbeat (its process or machine died), so the "
            "pipeline starts a crashed training run again on another worker; workers must run "
            "with PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30. E.g. 90.",
        ),
    ] = None,
) -> None:
    """Register the deployments in deployments/prefect.yaml (prefect deploy --all)."""
    from flows.deploy import (
        CRASH_AUTOMATION,
        PREFECT_FILE,
        crash_automation,
        deploy,
        ensure_crash_automation,
    )

    if crash_after is not None:
        crash_automation(crash_after)  # checks the window before anything is deployed
    deploy(PREFECT_FILE)
    console.print(f"[bold green]deployed[/] {PREFECT_FILE}", highlight=False)
    if crash_after is not None:
        done = ensure_crash_automation(crash_after)
        console.print(f"automation {CRASH_AUTOMATION!r} {done} ({crash_after} s)", highlight=False)


@data_app.command("push")
def data_push(
    source: Annotated[
        Path, typer.Argument(help="Local data directory with <task>/{train,test}.parquet.")
    ],
    destination: Annotated[
        str, typer.Argument(help="Object-store URI to copy it to, e.g. s3://llmsynth/data.")
    ],
) -> None:
    """Copy a data directory to an object store; then set LLMSYNTH_DATA_DIR to the URI, so
    that workers on other machines read the data from there."""
    from tasks.data_push import push_data

    pushed = push_data(source, destination)
    size = sum(file.size for file in pushed)
    console.print(
        f"pushed {len(pushed)} files ({size / 1e6:.1f} MB) from {source} to {destination}; "
        f"set LLMSYNTH_DATA_DIR={destination}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    from flows.local_server import apply_defaults

    # No telemetry from an offline tool; the user can still opt in by setting it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    apply_defaults(os.environ)
    try:
        app()
    except LlmsynthError as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
