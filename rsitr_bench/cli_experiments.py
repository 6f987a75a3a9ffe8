"""CLI commands over many runs: sweep, report, check. Registered on the app in cli.py.

Helpers come from rsitr_bench.cli inside each function, because cli.py imports this module
at its end and a top-level import would be circular.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the sweep, report and check commands to ``app``."""
    app.command("sweep")(sweep)
    app.command("report")(report)
    app.command("check")(check)


def _fail_plain(message: str) -> None:
    """Print an error whose text may contain brackets (bench.toml table names) and exit with code 1.

    ``_fail`` prints with rich markup off, so the message must not be escaped: escaping
    would print a backslash before every bracket.
    """
    from rsitr_bench.cli import _fail

    _fail(message)


def _location_overrides(output_dir: Path | None, device: str | None, data_root: Path | None) -> dict[str, Any]:
    values = {"output_dir": output_dir, "device": device, "data_root": data_root}
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items() if value is not None}


# --------------------------------------------------------------------------- sweep


def _sweep_progress_class():
    from rsitr_bench.cli import RichProgress_

    class SweepProgress(RichProgress_):
        """A RichProgress_ with one extra bar over the whole grid above each run's steps."""

        def start_grid(self, total: int) -> None:
            self._grid_task = self._progress.add_task("sweep", total=total)

        def describe_grid(self, description: str) -> None:
            self._progress.update(self._grid_task, description=description)

        def advance_grid(self) -> None:
            self._progress.advance(self._grid_task, 1)

    return SweepProgress


def sweep(
    bench_file: Optional[Path] = typer.Argument(None, help="bench.toml with the sweep table (default: ./bench.toml)"),
    shard: Optional[str] = typer.Option(
        None, help="run only share i of n of the grid, written i/n with i from 1 to n (1/4 ... 4/4). The n shares are disjoint and together cover the grid"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would run, resume or be skipped, and run nothing"),
    output_dir: Optional[Path] = typer.Option(None, help="folder for run records and checkpoints (default: output_dir of the run table in bench.toml, else results)"),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N (default: device of the run table in bench.toml, else auto)"),
    data_root: Optional[Path] = typer.Option(None, help="folder that contains rsicd/, rsitmd/, ucm/, sydney/ (default: $RSITR_DATA_ROOT)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages"),
) -> None:
    """Run the grid of the sweep table in bench.toml, skipping runs already completed with the same settings.

    A failed run is recorded and the sweep continues. At the end the command lists the
    failures and exits with code 1. Ctrl-C saves a checkpoint of the current run. Run the
    same command again to resume it and continue with the rest of the grid.
    """
    from rich.markup import escape
    from rich.table import Table

    from rsitr_bench.cli import _bench_defaults, _setup_logging, console, stdout
    from rsitr_bench.errors import UserError
    from rsitr_bench.sweep import parse_shard, parse_sweep_table, plan_sweep, run_sweep
    from rsitr_bench.train import RunInterrupted

    _setup_logging(verbose)
    try:
        if bench_file is None and not Path("bench.toml").is_file():
            _fail_plain("No bench.toml in this folder. Pass the file with the [sweep] table: rsitr-bench sweep path/to/bench.toml.")
        bench = _bench_defaults(bench_file)
        spec = parse_sweep_table(bench)
        shard_value = parse_shard(shard) if shard is not None else None
        plan = plan_sweep(bench, spec, _location_overrides(output_dir, device, data_root), shard_value)
    except UserError as error:
        _fail_plain(str(error))

    share = f" (shard {shard_value[0]}/{shard_value[1]})" if shard_value else ""
    to_run = [p for p in plan if p.action != "skip"]
    stdout.print(
        f"Sweep{share}: {len(plan)} runs, {len(plan) - len(to_run)} already completed, {len(to_run)} to run "
        f"({', '.join(spec.methods)} on {', '.join(spec.datasets)}, seeds {', '.join(map(str, spec.seeds))}).",
        highlight=False,
    )
    if dry_run:
        table = Table(title="Planned runs")
        for column in ("#", "dataset", "seed", "method", "action", "config key", "existing record"):
            table.add_column(column, overflow="fold")
        for p in plan:
            cells = (str(p.position + 1), p.dataset, str(p.seed), p.method, p.action, p.key,
                     p.existing_record.name if p.existing_record else "")
            table.add_row(*(escape(cell) for cell in cells))
        stdout.print(table)
        return

    progress_class = _sweep_progress_class()
    counter = {"done": 0}
    current: dict[str, Any] = {}

    def on_start(planned) -> None:
        current["run"] = planned
        current["started"] = time.time()
        progress.describe_grid(f"sweep: {planned.method} on {planned.dataset}, seed {planned.seed}")

    def on_finish(outcome) -> None:
        counter["done"] += 1
        planned = outcome.planned
        prefix = f"[{counter['done']}/{len(plan)}] {planned.method} on {planned.dataset}, seed {planned.seed}:"
        if outcome.status == "skipped":
            console.print(f"{prefix} skipped, already completed in {outcome.record_path.name}", highlight=False, markup=False)
        elif outcome.status == "completed":
            seconds = time.time() - current["started"]
            mr = outcome.record["metrics"]["test"]["mR"]
            console.print(f"[green]{escape(prefix)} completed[/], test mR {mr:.2f} in {seconds:.0f} s", highlight=False)
        else:
            console.print(f"[red]{escape(prefix)} failed[/]: {escape(str(outcome.error))}", highlight=False)
        progress.advance_grid()

    try:
        with progress_class(console) as progress:
            progress.start_grid(len(plan))
            outcomes = run_sweep(plan, progress, on_start, on_finish)
    except RunInterrupted as interrupted:
        planned = current["run"]
        console.print(
            f"Sweep stopped during {planned.method} on {planned.dataset}, seed {planned.seed} "
            f"({interrupted}). Run the same command again to resume that run and continue the grid:\n"
            f"  rsitr-bench {' '.join(sys.argv[1:])}",
            highlight=False, markup=False, style="yellow",
        )
        raise typer.Exit(130 if interrupted.signal_name == "SIGINT" else 143)
    except KeyboardInterrupt:
        planned = current.get("run")
        where = f" during {planned.method} on {planned.dataset}, seed {planned.seed}, outside its training loop" if planned else ""
        console.print(
            f"Sweep stopped{where}. Finished runs are recorded. Run the same command again to continue. "
            "An unfinished run resumes from its last epoch checkpoint if it has one, else starts again.",
            highlight=False, markup=False, style="yellow",
        )
        raise typer.Exit(130)

    failures = [o for o in outcomes if o.status == "failed"]
    completed = sum(o.status == "completed" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    stdout.print(f"Sweep finished: {completed} completed, {skipped} skipped, {len(failures)} failed.", highlight=False)
    if failures:
        for outcome in failures:
            planned = outcome.planned
            stdout.print(f"  failed: {planned.method} on {planned.dataset}, seed {planned.seed}: {outcome.error}", highlight=False, markup=False)
        raise typer.Exit(1)


# --------------------------------------------------------------------------- report


def _print_table(data, justify_first: int = 1) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rsitr_bench.cli import stdout

    table = Table(title=escape(data.title))
    for index, header in enumerate(data.headers):
        table.add_column(escape(header), justify="left" if index < justify_first else "right")
    for row in data.rows:
        table.add_row(*(escape(cell) for cell in row))
    stdout.print(table)


def report(
    output_dir: Optional[Path] = typer.Option(None, help="results folder that contains runs/. The report files are written here too (default: output_dir of the run table in bench.toml, else results)"),
    reference: Optional[str] = typer.Option(None, help="method that the others are compared with (default: reference of the sweep table in bench.toml)"),
    config: Optional[Path] = typer.Option(None, "--config", help="bench.toml with defaults (default: ./bench.toml if present)"),
    bootstrap_resamples: int = typer.Option(5000, min=100, help="number of resamples of the test images in the paired bootstrap (at least 100)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages"),
) -> None:
    """Tabulate completed runs (mean ± std over seeds), compare methods with the reference, write files and plots."""
    from rsitr_bench.cli import _bench_defaults, _setup_logging, console, stdout
    from rsitr_bench.errors import UserError
    from rsitr_bench.report import build_report, comparison_notes, cost_table, comparison_table, method_legend, record_listings, summary_table, write_report

    _setup_logging(verbose)
    try:
        bench = _bench_defaults(config)
    except UserError as error:
        _fail_plain(str(error))
    folder = output_dir or Path(bench.get("run", {}).get("output_dir", "results"))
    reference = reference or bench.get("sweep", {}).get("reference")
    if not (folder / "runs").is_dir():
        _fail_plain(f"No run records: {folder / 'runs'} does not exist. Pass --output-dir with the folder that `run` or `sweep` wrote to.")

    result = build_report(folder, reference, resamples=bootstrap_resamples)
    listings = record_listings(result.collection)
    titles = {
        "unreadable": "Unreadable record files (skipped)",
        "failed": "Failed runs (left out of the tables)",
        "incomplete": "Interrupted or running runs (left out of the tables)",
    }
    for name, entries in listings.items():
        if entries:
            console.print(f"{titles[name]}:", highlight=False, markup=False, style="yellow")
            for entry in entries:
                console.print(f"  {entry}", highlight=False, markup=False)
    if not result.summaries:
        _fail_plain(
            f"No completed runs in {folder / 'runs'}, so there is nothing to report. Pass --output-dir with the "
            "folder of a run or sweep that completed."
        )

    for dataset in result.datasets:
        _print_table(summary_table(result, dataset))
        _print_table(cost_table(result, dataset))
    if result.comparisons:
        _print_table(comparison_table(result), justify_first=3)
        for line in method_legend(result) + comparison_notes(result):
            stdout.print(f"- {line}", highlight=False, markup=False)
    for note in result.notes:
        stdout.print(f"Note: {note}", highlight=False, markup=False)

    written = write_report(result, folder)
    stdout.print("Wrote " + ", ".join(str(path) for path in written), highlight=False, markup=False)


# --------------------------------------------------------------------------- check


def check(
    bench_file: Optional[Path] = typer.Argument(None, help="bench.toml with the check table (default: ./bench.toml)"),
    update: bool = typer.Option(False, "--update", help="run the suite and rewrite the baseline with its metrics instead of comparing"),
    baseline: Optional[Path] = typer.Option(None, help="baseline JSON file (default: baseline of the check table, relative to bench.toml)"),
    tolerance: Optional[float] = typer.Option(None, min=0.0, help="allowed drop per metric in percentage points (default: tolerance of the check table, else 0.5)"),
    output_dir: Optional[Path] = typer.Option(None, help="folder for the check's run records (default: a temporary folder, deleted afterwards)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto (default: device of the check table, else cpu)"),
    data_root: Optional[Path] = typer.Option(None, help="folder that contains the real datasets. Runs that need it are skipped without it (default: $RSITR_DATA_ROOT)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages"),
) -> None:
    """Run the small suite of the check table and compare each test metric with the stored baseline.

    Exits with code 1 when a metric drops by more than the tolerance, a run fails, or a run
    has no baseline entry. Improvements beyond the tolerance are reported as notes.
    """
    from rich.markup import escape

    from rsitr_bench.check import compare_with_baseline, load_baseline, parse_check_table, run_check_suite, write_baseline
    from rsitr_bench.cli import RichProgress_, _setup_logging, console, stdout
    from rsitr_bench.config import load_bench_toml
    from rsitr_bench.errors import UserError
    from rsitr_bench.train import RunInterrupted

    _setup_logging(verbose)
    bench_path = bench_file or Path("bench.toml")
    try:
        if not bench_path.is_file():
            _fail_plain(f"{bench_path} not found. Pass the bench.toml that has the [check] table: rsitr-bench check path/to/bench.toml.")
        spec = parse_check_table(load_bench_toml(bench_path), bench_path.resolve().parent)
        baseline_path = baseline or spec.baseline
        allowed = spec.tolerance if tolerance is None else tolerance
        previous = None if update else load_baseline(baseline_path)
    except UserError as error:
        _fail_plain(str(error))
    if update and baseline_path.is_file():
        try:
            previous = load_baseline(baseline_path)
        except UserError as error:
            console.print(f"Replacing the unreadable baseline: {error}", highlight=False, markup=False, style="yellow")

    def on_finish(outcome) -> None:
        name = outcome.entry.name
        if outcome.skipped:
            console.print(f"{name}: skipped, {outcome.skipped}", highlight=False, markup=False)
        elif outcome.error:
            console.print(f"[red]{escape(name)}: failed[/]: {escape(str(outcome.error))}", highlight=False)
        else:
            record = outcome.record
            console.print(f"{name}: test mR {record['metrics']['test']['mR']:.2f} in {record['wall_time_s']:.1f} s", highlight=False, markup=False)

    with tempfile.TemporaryDirectory(prefix="rsitr-check-") as temporary:
        folder = output_dir or Path(temporary)
        try:
            with RichProgress_(console) as progress:
                outcomes = run_check_suite(spec, folder, str(data_root) if data_root else None, device, progress, on_finish)
        except RunInterrupted as interrupted:
            console.print(f"Check stopped ({interrupted}).", highlight=False, markup=False, style="yellow")
            raise typer.Exit(130)

    if update:
        failed = [o for o in outcomes if o.error]
        updated = write_baseline(baseline_path, outcomes, previous)
        stdout.print(f"Wrote baseline {baseline_path} with {len(updated)} updated entries: {', '.join(updated) or 'none'}.", highlight=False, markup=False)
        for outcome in outcomes:
            if outcome.skipped:
                has_previous = previous is not None and outcome.entry.name in previous["entries"]
                result = "kept its previous values" if has_previous else "has no baseline values"
                stdout.print(f"  {outcome.entry.name}: skipped ({outcome.skipped}), so it {result}", highlight=False, markup=False)
        if failed:
            _fail_plain("Failed runs were left out of the baseline: " + "; ".join(f"{o.entry.name}: {o.error}" for o in failed))
        return

    verdicts = [compare_with_baseline(outcome, previous, allowed) for outcome in outcomes]
    _print_verdicts(verdicts, allowed, baseline_path)
    problems = [v for v in verdicts if not v.ok]
    if problems:
        _fail_plain(f"Check failed: {len(problems)} of {len(verdicts)} runs did not pass: " + ", ".join(f"{v.entry.name} ({v.status})" for v in problems) + ".")
    stdout.print(f"Check passed: every metric within {allowed:g} percentage points of {baseline_path}.", highlight=False, markup=False)


def _print_verdicts(verdicts, tolerance: float, baseline_path: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rsitr_bench.cli import stdout

    table = Table(title=escape(f"Check against {baseline_path} (tolerance {tolerance:g} pp)"))
    for column in ("run", "status", "largest |difference| (pp)"):
        table.add_column(column)
    for verdict in verdicts:
        largest = f"{verdict.max_abs_difference:.2f}" if verdict.max_abs_difference is not None else ""
        colour = {"passed": "green", "skipped": "yellow"}.get(verdict.status, "red")
        table.add_row(escape(verdict.entry.name), f"[{colour}]{verdict.status}[/]", largest)
    stdout.print(table)
    for verdict in verdicts:
        for change in verdict.regressions:
            stdout.print(f"REGRESSED {verdict.entry.name}: {change.describe()}, more than {tolerance:g} pp below the baseline", highlight=False, markup=False)
        for change in verdict.improvements:
            stdout.print(f"Note: {verdict.entry.name} improved: {change.describe()}. Run `rsitr-bench check --update` to keep it", highlight=False, markup=False)
        for message in verdict.messages:
            stdout.print(f"{verdict.entry.name}: {message}", highlight=False, markup=False)
