"""The ``rsitr-bench`` command line. Rich output lives here and nowhere else."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rsitr_bench.config import DATA_ROOT_ENV, TrainConfig, load_bench_toml, parse_assignment
from rsitr_bench.errors import TrainingFailed, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # Plain help text, so that "[default: ...]" in option help is shown as written.
    rich_markup_mode=None,
    help="Compare parameter-efficient fine-tuning methods for remote-sensing image-text retrieval.",
)
console = Console(stderr=True)
# Outside a terminal (a pipe, a log file, CI) rich assumes 80 columns and crops table cells.
stdout = Console() if Console().is_terminal else Console(width=200)
_logger = logging.getLogger("rsitr_bench")

DEFAULT_BENCH_FILE = Path("bench.toml")


class RichProgress_:
    """Draws one rich progress bar per long step."""

    def __init__(self, console: Console):
        self._progress = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        )
        self._task = None

    def __enter__(self) -> "RichProgress_":
        self._progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._progress.stop()

    def start(self, description: str, total: int) -> None:
        self.finish()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def _setup_logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    level = logging.DEBUG if verbose else logging.INFO
    for name in ("rsitr_bench", "methods"):
        logging.getLogger(name).setLevel(level)


def _fail(message: str, code: int = 1) -> None:
    console.print("Error:", message, style="bold red", markup=False, highlight=False)
    raise typer.Exit(code)


def _bench_defaults(path: Path | None) -> dict[str, Any]:
    """Read bench.toml if it was given or exists in the current folder."""
    if path is None:
        if not DEFAULT_BENCH_FILE.is_file():
            return {}
        path = DEFAULT_BENCH_FILE
    return load_bench_toml(path)


def _split_overrides(assignments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``--set`` values into training settings (``train.x``) and the method's own settings."""
    train_values: dict[str, Any] = {}
    method_values: dict[str, Any] = {}
    for text in assignments:
        key, value = parse_assignment(text)
        if key.startswith("train."):
            train_values[key[len("train."):]] = value
        else:
            method_values[key] = value
    return train_values, method_values


@app.command()
def run(
    method: str = typer.Option(..., "--method", "-m", help="method name; see `rsitr-bench methods`"),
    dataset: str = typer.Option(..., "--dataset", "-d", help="rsicd, rsitmd, ucm, sydney, demo, or a dataset folder path"),
    data_root: Optional[Path] = typer.Option(None, help=f"folder that contains rsicd/, rsitmd/, ucm/, sydney/ [default: ${DATA_ROOT_ENV}]"),
    image_dir: Optional[Path] = typer.Option(None, help="image folder [default: <dataset folder>/images]"),
    model: Optional[str] = typer.Option(None, help="open_clip architecture, e.g. ViT-B-32 [default: rsitr-tiny]"),
    pretrained: Optional[str] = typer.Option(None, help="open_clip pretrained tag (openai), a local .pt/.safetensors file, 'demo' (rsitr-tiny weights made on first use) or 'none' for random weights [default: bench.toml, else none]"),
    epochs: Optional[int] = typer.Option(None, help="training epochs [default: 5]"),
    batch_size: Optional[int] = typer.Option(None, help="training batch size in image-caption pairs [default: 64]"),
    lr: Optional[float] = typer.Option(None, help="peak learning rate of new modules [default: per method]"),
    seed: Optional[int] = typer.Option(None, help="random seed [default: 0]"),
    output_dir: Optional[Path] = typer.Option(None, help="folder for run records and checkpoints [default: results]"),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N [default: auto]"),
    set_: list[str] = typer.Option([], "--set", help="override a method setting (key=value) or a training setting (train.key=value), repeatable"),
    config: Optional[Path] = typer.Option(None, "--config", help="bench.toml with defaults [default: ./bench.toml if present]"),
    resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint of an interrupted run with the same settings"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages"),
) -> None:
    """Train and evaluate one method on one dataset, and write a run record."""
    _setup_logging(verbose)
    from rsitr_bench.run import execute_run, resolve_config
    from rsitr_bench.train import RunInterrupted

    try:
        bench = _bench_defaults(config)
        cli_values = {"data_root": data_root, "image_dir": image_dir, "model": model, "pretrained": pretrained,
                      "seed": seed, "output_dir": output_dir, "device": device}
        run_values = {key: str(value) if isinstance(value, Path) else value for key, value in cli_values.items() if value is not None}
        cli_train = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
        train_values = {key: value for key, value in cli_train.items() if value is not None}
        set_train, method_values = _split_overrides(set_)
        train_values.update(set_train)
        run_config = resolve_config(bench, method, dataset, run_values, train_values, method_values)

        with RichProgress_(console) as progress:
            result = execute_run(run_config, resume=resume, progress=progress)
    except UserError as error:
        _fail(str(error))
    except TrainingFailed as failure:
        _fail(f"Run failed: {failure}. The run record is marked as failed and is left out of tables.")
    except RunInterrupted as interrupted:
        command = " ".join(sys.argv[1:] if "--resume" in sys.argv else sys.argv[1:] + ["--resume"])
        console.print(
            f"[yellow]Run {interrupted}.[/] Resume it with:\n  rsitr-bench {command}", highlight=False
        )
        raise typer.Exit(130 if interrupted.signal_name == "SIGINT" else 143)

    if result.record_path is not None:
        _print_metrics(result.record)
        stdout.print(f"Run record: {result.record_path}", highlight=False)


def _print_metrics(record: dict[str, Any]) -> None:
    from rsitr_bench.metrics import METRIC_KEYS

    table = Table(title=f"{record['method']} on {record['dataset']} (seed {record['seed']}), test split")
    for key in METRIC_KEYS:
        table.add_column(key, justify="right")
    table.add_column("trainable params", justify="right")
    test = record["metrics"]["test"]
    table.add_row(*(f"{test[key]:.2f}" for key in METRIC_KEYS), f"{record['params']['trainable']:,}")
    stdout.print(table)
    if record.get("test_split_note"):
        stdout.print(f"Note: {record['test_split_note']}", highlight=False)


@app.command("methods")
def list_methods(
    model: str = typer.Option("rsitr-tiny", help="open_clip architecture whose trainable parameters are counted"),
) -> None:
    """List the registered methods with their trainable parameter counts for a model."""
    _setup_logging(False)
    for name in ("rsitr_bench", "methods"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one line per method would bury the table
    from rsitr_bench.catalog import method_table

    try:
        rows = method_table(model)
    except UserError as error:
        _fail(str(error))
    table = Table(
        title=f"Methods: trainable parameters on {model}",
        caption="Counted on random weights, without CLIP's logit scale, which runs also train (+1) unless the "
        "method's loss ignores it. Classification heads are counted for 2 scene classes; runs count their dataset's.",
    )
    for column in ("method", "trainable params", "description"):
        table.add_column(column, justify="right" if column == "trainable params" else "left")
    for row in rows:
        table.add_row(row["name"], row["params"], row["description"])
    stdout.print(table)


@app.command("datasets")
def list_datasets(
    data_root: Optional[Path] = typer.Option(None, help=f"folder that contains rsicd/, rsitmd/, ucm/, sydney/ [default: ${DATA_ROOT_ENV}]"),
    dataset: list[str] = typer.Option([], "--dataset", "-d", help="dataset names or folders to list [default: all four standard datasets]"),
) -> None:
    """Count images, captions and missing images per split of each dataset."""
    _setup_logging(False)
    from rsitr_bench.catalog import dataset_table

    try:
        rows, notes = dataset_table(dataset or None, str(data_root) if data_root else None)
    except UserError as error:
        _fail(str(error))
    table = Table(title="Datasets (published splits)")
    columns = ("dataset", "split", "images", "captions", "images without captions", "missing images", "labelled images")
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "split") else "right")
    for row in rows:
        table.add_row(row["dataset"], row["split"], f"{row['images']:,}", f"{row['captions']:,}",
                      f"{row['uncaptioned']:,}", f"{row['missing']:,}", f"{row['labelled']:,}")
    stdout.print(table)
    for note in notes:
        stdout.print(f"- {note}", highlight=False)


def main() -> None:
    app()


# sweep, report and check live in their own module; it imports helpers from this one.
from rsitr_bench.cli_experiments import register as _register_experiments  # noqa: E402

_register_experiments(app)


if __name__ == "__main__":
    main()
