"""Tables and plots from the run records of a results folder.

``collect_runs`` sorts the records into completed runs, grouped by dataset, method and
settings, and the runs that must stay out of every average (failed, interrupted, still
running, unreadable). ``build_report`` computes per-group means over seeds and the paired
comparisons against a reference method. ``write_report`` writes Markdown, CSV, LaTeX and
PNG files. Rendering on the terminal is the CLI's job.

Settings that describe where a run ran (``output_dir``, ``device``, ``data_root``, ``image_dir``)
do not split groups, so runs that differ only there are treated as the same configuration.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from rsitr_bench import stats
from rsitr_bench.metrics import METRIC_KEYS
from rsitr_bench.records import LoadedRecord, UnreadableRecord, config_hash, read_records

_logger = logging.getLogger(__name__)

LOCATION_SETTINGS = ("output_dir", "device", "data_root", "image_dir")
"""Config keys that describe where a run ran, not what it computed."""
ALPHA = 0.05
SIGNIFICANCE_MARK = "*"

METRIC_HEADERS = {
    "i2t_R@1": "I2T R@1", "i2t_R@5": "I2T R@5", "i2t_R@10": "I2T R@10",
    "t2i_R@1": "T2I R@1", "t2i_R@5": "T2I R@5", "t2i_R@10": "T2I R@10", "mR": "mR",
}

MARKDOWN_FILE = "report.md"
SUMMARY_CSV = "report_summary.csv"
COMPARISONS_CSV = "report_comparisons.csv"
SUMMARY_TEX = "report_summary.tex"
COMPARISONS_TEX = "report_comparisons.tex"
PARAMS_PLOT = "report_mr_vs_params.png"
HISTORY_PLOT = "report_val_mr_per_epoch.png"


# --------------------------------------------------------------------------- collecting


@dataclass
class RunGroup:
    """Completed runs of one method with one set of settings on one dataset, one per seed."""

    dataset: str
    method: str
    variant: str
    """Hash of the settings without seed and location settings."""
    label: str
    """Method name, plus the settings that set this group apart when a method has several."""
    records: list[LoadedRecord]
    """Sorted by seed, at most one per seed."""

    @property
    def seeds(self) -> list[int]:
        return [int(r.data["seed"]) for r in self.records]

    def by_seed(self) -> dict[int, LoadedRecord]:
        return {int(r.data["seed"]): r for r in self.records}


@dataclass
class Collection:
    """The records of a results folder, sorted by what the report may do with them."""

    groups: list[RunGroup]
    failed: list[LoadedRecord]
    incomplete: list[LoadedRecord]
    """Interrupted or still running."""
    unreadable: list[UnreadableRecord]
    notes: list[str] = field(default_factory=list)
    superseded: set[Path] = field(default_factory=set)
    """Failed or incomplete records whose settings and seed also have a completed run."""


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """Return the settings that define a variant: the config without seed, dataset path and location settings."""
    return {k: v for k, v in config.items() if k not in ("seed", "dataset", *LOCATION_SETTINGS)}


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key == "train" and isinstance(value, dict):
            flat.update({f"train.{k}": v for k, v in value.items()})
        elif key == "method_options" and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def _finished_at(record: LoadedRecord) -> str:
    return str(record.data.get("finished_at") or "")


def collect_runs(output_dir: Path) -> Collection:
    """Read the records under ``<output_dir>/runs`` and sort them as the module docstring describes.

    Of several completed runs with the same settings and seed, only the newest is kept, and a
    note names the others.
    """
    loaded, unreadable = read_records(output_dir)
    failed = [r for r in loaded if r.data["status"] == "failed"]
    incomplete = [r for r in loaded if r.data["status"] in ("interrupted", "running")]
    completed = [r for r in loaded if r.data["status"] == "completed"]
    notes: list[str] = []

    by_variant: dict[tuple[str, str, str], dict[int, list[LoadedRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in completed:
        variant = config_hash(settings_of(record.data["config"]))
        key = (str(record.data["dataset"]), str(record.data["method"]), variant)
        by_variant[key][int(record.data["seed"])].append(record)

    groups: list[RunGroup] = []
    for (dataset, method, variant), per_seed in sorted(by_variant.items()):
        chosen = []
        for seed, candidates in sorted(per_seed.items()):
            candidates.sort(key=_finished_at)
            newest = candidates[-1]
            chosen.append(newest)
            if len(candidates) > 1:
                older = ", ".join(c.path.name for c in candidates[:-1])
                notes.append(
                    f"{len(candidates)} completed runs of {method} on {dataset}, seed {seed}, share the same "
                    f"settings, so the report is using the newest, {newest.path.name} (finished "
                    f"{_finished_at(newest) or 'unknown'}), and ignoring {older}."
                )
        groups.append(RunGroup(dataset, method, variant, method, chosen))

    _label_variants(groups)
    completed_keys = {_settings_key(r) for g in groups for r in g.records}
    superseded = {r.path for r in failed + incomplete if _settings_key(r) in completed_keys}
    return Collection(groups, failed, incomplete, unreadable, notes, superseded)


def _settings_key(record: LoadedRecord) -> tuple[str, str, int, str]:
    data = record.data
    return (str(data["dataset"]), str(data["method"]), int(data["seed"]), config_hash(settings_of(data["config"])))


def _label_variants(groups: list[RunGroup]) -> None:
    """Name groups of a method that has several settings on a dataset by the settings that differ."""
    by_method: dict[tuple[str, str], list[RunGroup]] = defaultdict(list)
    for group in groups:
        by_method[(group.dataset, group.method)].append(group)
    for siblings in by_method.values():
        if len(siblings) < 2:
            continue
        flats = [_flatten(settings_of(g.records[0].data["config"])) for g in siblings]
        keys = sorted({k for flat in flats for k in flat})
        differing = [k for k in keys if len({repr(flat.get(k)) for flat in flats}) > 1]
        for group, flat in zip(siblings, flats):
            described = ", ".join(f"{k}={flat.get(k)!r}" for k in differing)
            group.label = f"{group.method} ({described})"


# --------------------------------------------------------------------------- statistics


@dataclass
class GroupSummary:
    """Means over seeds of one group's test metrics and costs."""

    group: RunGroup
    metrics: dict[str, stats.Summary]
    trainable: stats.Summary
    method_params: stats.Summary | None
    wall_time_s: stats.Summary | None
    peak_rss_mb: stats.Summary | None
    peak_gpu_mb: stats.Summary | None


def _optional_summary(values: list[float | None]) -> stats.Summary | None:
    present = [v for v in values if v is not None]
    return stats.summarize(present) if present else None


def summarize_group(group: RunGroup) -> GroupSummary:
    """Average one group's metrics, parameter counts, training time and peak memory over seeds."""
    data = [r.data for r in group.records]
    metrics = {key: stats.summarize([d["metrics"]["test"][key] for d in data]) for key in METRIC_KEYS}
    return GroupSummary(
        group=group,
        metrics=metrics,
        trainable=stats.summarize([d.get("params", {}).get("trainable", 0) for d in data]),
        method_params=_optional_summary([d.get("params", {}).get("method") for d in data]),
        wall_time_s=_optional_summary([d.get("wall_time_s") for d in data]),
        peak_rss_mb=_optional_summary([d.get("peak_memory", {}).get("cpu_rss_mb") for d in data]),
        peak_gpu_mb=_optional_summary([d.get("peak_memory", {}).get("cuda_allocated_mb") for d in data]),
    )


@dataclass
class Comparison:
    """One method against the reference on one dataset, over the seeds both have."""

    dataset: str
    label: str
    reference_label: str
    seeds: list[int]
    difference: stats.Interval
    """Mean over seeds of mR(method) - mR(reference), with its t interval."""
    t_test: stats.TestResult
    wilcoxon: stats.TestResult
    bootstrap: stats.BootstrapResult | None
    notes: list[str] = field(default_factory=list)
    t_holm: float | None = None
    wilcoxon_holm: float | None = None
    bootstrap_holm: float | None = None


def _rank_set(record: LoadedRecord) -> stats.RankSet | None:
    ranks = record.data.get("ranks")
    if not isinstance(ranks, dict) or not all(k in ranks for k in ("i2t", "t2i", "caption_image")):
        return None
    return stats.RankSet.from_lists(ranks["i2t"], ranks["t2i"], ranks["caption_image"])


def compare(
    group: RunGroup,
    reference: RunGroup,
    resamples: int = stats.DEFAULT_BOOTSTRAP_RESAMPLES,
    bootstrap_seed: int = stats.DEFAULT_BOOTSTRAP_SEED,
) -> Comparison | None:
    """Compare ``group`` with ``reference`` over their shared seeds, or return None when they share none."""
    ours, theirs = group.by_seed(), reference.by_seed()
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        return None
    treatment = [ours[s].data["metrics"]["test"]["mR"] for s in seeds]
    baseline = [theirs[s].data["metrics"]["test"]["mR"] for s in seeds]
    notes: list[str] = []
    unpaired = sorted((set(ours) | set(theirs)) - set(seeds))
    if unpaired:
        notes.append(f"seeds {unpaired} are in only one of the two methods and are left out of the paired tests")

    bootstrap = None
    try:
        treatment_ranks = [_rank_set(ours[s]) for s in seeds]
        reference_ranks = [_rank_set(theirs[s]) for s in seeds]
        paired_records = [ours[s] for s in seeds] + [theirs[s] for s in seeds]
        missing = [r.path.name for r, ranks in zip(paired_records, treatment_ranks + reference_ranks) if ranks is None]
        if missing:
            notes.append(f"bootstrap skipped: no ranks.caption_image in {', '.join(missing)}")
        else:
            bootstrap = stats.paired_bootstrap(treatment_ranks, reference_ranks, resamples=resamples, seed=bootstrap_seed)
    except ValueError as error:
        notes.append(f"bootstrap skipped: {error}")

    t_test = stats.paired_t_test(treatment, baseline)
    wilcoxon = stats.wilcoxon_test(treatment, baseline, alpha=ALPHA)
    notes += [note for note in (t_test.note, wilcoxon.note) if note]
    difference = stats.mean_confidence_interval([a - b for a, b in zip(treatment, baseline)])
    return Comparison(group.dataset, group.label, reference.label, seeds, difference, t_test, wilcoxon, bootstrap, notes)


def _choose_reference(groups: list[RunGroup], method: str, dataset: str, notes: list[str]) -> RunGroup | None:
    candidates = [g for g in groups if g.dataset == dataset and g.method == method]
    if not candidates:
        return None
    candidates.sort(key=lambda g: (len(g.records), max(_finished_at(r) for r in g.records)))
    chosen = candidates[-1]
    if len(candidates) > 1:
        notes.append(
            f"{dataset}: {method} has {len(candidates)} settings. The reference is {chosen.label}, the one "
            "with the most seeds (the most recently finished on a tie)."
        )
    return chosen


def compare_all(
    groups: list[RunGroup],
    reference_method: str,
    resamples: int = stats.DEFAULT_BOOTSTRAP_RESAMPLES,
    bootstrap_seed: int = stats.DEFAULT_BOOTSTRAP_SEED,
) -> tuple[list[Comparison], list[str]]:
    """Compare every group with the reference method of its dataset and Holm-adjust the p-values.

    Holm runs separately for the t-test, the Wilcoxon test and the bootstrap, each over all
    comparisons of the report (all datasets).
    """
    notes: list[str] = []
    comparisons: list[Comparison] = []
    for dataset in sorted({g.dataset for g in groups}):
        reference = _choose_reference(groups, reference_method, dataset, notes)
        if reference is None:
            notes.append(f"{dataset}: no completed run of the reference method {reference_method!r}, so nothing is compared.")
            continue
        for group in groups:
            if group.dataset != dataset or group is reference:
                continue
            comparison = compare(group, reference, resamples, bootstrap_seed)
            if comparison is None:
                notes.append(f"{dataset}: {group.label} shares no seed with {reference.label}, so it is not compared.")
                continue
            comparisons.append(comparison)

    for attribute, target in (("t_test", "t_holm"), ("wilcoxon", "wilcoxon_holm")):
        adjusted = stats.holm([getattr(c, attribute).p_value for c in comparisons])
        for comparison, value in zip(comparisons, adjusted):
            setattr(comparison, target, value)
    adjusted = stats.holm([c.bootstrap.p_value if c.bootstrap else None for c in comparisons])
    for comparison, value in zip(comparisons, adjusted):
        comparison.bootstrap_holm = value
    return comparisons, notes


# --------------------------------------------------------------------------- tables


@dataclass
class TableData:
    """A table as strings, ready for rich, tabulate or CSV."""

    title: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    """Everything ``rsitr-bench report`` shows and writes."""

    collection: Collection
    summaries: list[GroupSummary]
    comparisons: list[Comparison]
    reference: str | None
    notes: list[str]
    resamples: int

    @property
    def datasets(self) -> list[str]:
        return sorted({s.group.dataset for s in self.summaries})


def build_report(
    output_dir: Path,
    reference: str | None,
    resamples: int = stats.DEFAULT_BOOTSTRAP_RESAMPLES,
    bootstrap_seed: int = stats.DEFAULT_BOOTSTRAP_SEED,
) -> Report:
    """Collect the records of ``output_dir`` and compute summaries and comparisons."""
    collection = collect_runs(output_dir)
    summaries = [summarize_group(g) for g in collection.groups]
    notes = list(collection.notes)
    comparisons: list[Comparison] = []
    if reference is None:
        notes.append("No reference method, so no comparisons. Set `reference` in [sweep] of bench.toml or pass --reference.")
    elif collection.groups:
        comparisons, comparison_notes = compare_all(collection.groups, reference, resamples, bootstrap_seed)
        notes += comparison_notes
    return Report(collection, summaries, comparisons, reference, notes, resamples)


def format_params(count: float) -> str:
    """Format a parameter count with three significant digits, as papers do: 0, 950, 49.2K, 1.05M, 151M."""
    # Rounding first makes 999,999 read 1.00M, not 1000K.
    count = float(f"{float(count):.3g}")
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= divisor:
            value = count / divisor
            digits = 3 - len(str(int(value)))
            return f"{value:.{max(digits, 0)}f}{suffix}"
    return f"{count:.0f}"


def format_summary(summary: stats.Summary | None, digits: int = 2) -> str:
    """Format mean ± sample std, with the std as n/a for a single seed."""
    if summary is None:
        return "n/a"
    std = f"{summary.std:.{digits}f}" if summary.std is not None else "n/a"
    return f"{summary.mean:.{digits}f} ± {std}"


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_p_with_holm(raw: float | None, adjusted: float | None) -> str:
    """Format 'p (Holm p)', with the significance mark after a Holm-adjusted p below ALPHA."""
    if raw is None:
        return "n/a"
    mark = SIGNIFICANCE_MARK if adjusted is not None and adjusted < ALPHA else ""
    return f"{format_p(raw)} ({format_p(adjusted)}{mark})"


def _interval_text(estimate: float, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return f"{estimate:+.2f} (CI n/a)"
    return f"{estimate:+.2f} [{low:+.2f}, {high:+.2f}]"


SUMMARY_HEADERS = ["method", *METRIC_HEADERS.values(), "params", "seeds"]
COST_HEADERS = ["method", "trainable params", "method params", "seeds", "run wall time (s)", "peak RSS (MB)", "peak GPU (MB)"]


def _dataset_summaries(report: Report, dataset: str) -> list[GroupSummary]:
    return [s for s in report.summaries if s.group.dataset == dataset]


def summary_table(report: Report, dataset: str) -> TableData:
    """Per-method test metrics, mean ± std over seeds, in the column order of the literature."""
    rows = []
    for summary in _dataset_summaries(report, dataset):
        rows.append([
            summary.group.label,
            *(format_summary(summary.metrics[key]) for key in METRIC_KEYS),
            format_params(summary.trainable.mean),
            str(summary.trainable.n),
        ])
    return TableData(f"{dataset}: test metrics in percent, mean ± std over seeds", SUMMARY_HEADERS, rows)


def cost_table(report: Report, dataset: str) -> TableData:
    """Per-method parameter counts, training time (whole run) and peak memory, mean ± std over seeds."""
    rows = []
    for summary in _dataset_summaries(report, dataset):
        method_params = format_params(summary.method_params.mean) if summary.method_params else "n/a"
        rows.append([
            summary.group.label,
            f"{summary.trainable.mean:,.0f}",
            method_params,
            str(summary.trainable.n),
            format_summary(summary.wall_time_s, 1),
            format_summary(summary.peak_rss_mb, 0),
            format_summary(summary.peak_gpu_mb, 0),
        ])
    return TableData(f"{dataset}: cost per run, mean ± std over seeds", COST_HEADERS, rows)


COMPARISON_HEADERS = [
    "dataset", "method", "reference", "paired seeds", "ΔmR [95% t CI]", "t-test p (Holm)",
    "Wilcoxon p (Holm)", "bootstrap ΔmR [95% CI]", "bootstrap p (Holm)",
]


def comparison_table(report: Report) -> TableData:
    """Paired comparisons against the reference, one row per method and dataset."""
    rows = []
    for c in report.comparisons:
        boot = c.bootstrap
        rows.append([
            c.dataset,
            c.label,
            c.reference_label,
            str(len(c.seeds)),
            _interval_text(c.difference.estimate, c.difference.low, c.difference.high),
            format_p_with_holm(c.t_test.p_value, c.t_holm),
            format_p_with_holm(c.wilcoxon.p_value, c.wilcoxon_holm),
            _interval_text(boot.difference, boot.low, boot.high) if boot else "n/a",
            format_p_with_holm(boot.p_value, c.bootstrap_holm) if boot else "n/a",
        ])
    title = f"mR difference to {report.reference} (percentage points), paired by seed"
    return TableData(title, COMPARISON_HEADERS, rows)


def comparison_notes(report: Report) -> list[str]:
    """Return one line per comparison note, prefixed with the dataset and method."""
    return [f"{c.dataset}, {c.label}: {note}" for c in report.comparisons for note in c.notes]


def method_legend(report: Report) -> list[str]:
    """Explain the statistics in the comparison table."""
    return [
        "ΔmR: mean over paired seeds of mR(method) - mR(reference), with a CI from the t distribution.",
        "t-test: scipy.stats.ttest_rel over seeds. Wilcoxon: scipy.stats.wilcoxon over seeds, "
        f"computed only with at least {stats.min_pairs_for_wilcoxon(ALPHA)} seeds.",
        f"bootstrap: {report.resamples} resamples of the test images (each with its captions), the same "
        "resample for all seeds and both methods. The statistic is the mean over seeds of the mR difference, "
        "with a percentile CI. It measures test-set uncertainty with the trained models fixed.",
        f"Holm: p-values in brackets are Holm-adjusted within each test over the {len(report.comparisons)} "
        f"comparison(s) of this report. {SIGNIFICANCE_MARK} marks an adjusted p < {ALPHA}.",
    ]


def record_listings(collection: Collection) -> dict[str, list[str]]:
    """Return one line per unreadable file, failed run and incomplete run, keyed by kind.

    None of these records appear in the tables.
    """

    def describe(record: LoadedRecord) -> str:
        data = record.data
        error = data.get("error") or {}
        reason = error.get("reason") if isinstance(error, dict) else str(error)
        text = f"{record.path.name}: {data['method']} on {data['dataset']}, seed {data['seed']}"
        if reason:
            text += f": {reason}"
        if record.path in collection.superseded:
            text += " (a completed run with the same settings exists)"
        return text

    return {
        "unreadable": [f"{u.path.name}: {u.reason}" for u in collection.unreadable],
        "failed": [describe(r) for r in collection.failed],
        "incomplete": [f"{describe(r)} [{r.data['status']}]" for r in collection.incomplete],
    }


# --------------------------------------------------------------------------- files


def _csv_summary_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for s in report.summaries:
        row: dict[str, Any] = {"dataset": s.group.dataset, "method": s.group.method, "label": s.group.label,
                               "variant": s.group.variant, "seeds": " ".join(map(str, s.group.seeds)), "n": s.trainable.n}
        for key in METRIC_KEYS:
            row[f"{key}_mean"] = s.metrics[key].mean
            row[f"{key}_std"] = s.metrics[key].std
        row["params_trainable"] = s.trainable.mean
        row["params_method"] = s.method_params.mean if s.method_params else None
        for name, value in (("wall_time_s", s.wall_time_s), ("peak_rss_mb", s.peak_rss_mb), ("peak_gpu_mb", s.peak_gpu_mb)):
            row[f"{name}_mean"] = value.mean if value else None
            row[f"{name}_std"] = value.std if value else None
        rows.append(row)
    return rows


def _csv_comparison_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for c in report.comparisons:
        boot = c.bootstrap
        rows.append({
            "dataset": c.dataset, "method": c.label, "reference": c.reference_label,
            "seeds": " ".join(map(str, c.seeds)), "n": len(c.seeds),
            "mR_diff_mean": c.difference.estimate, "mR_diff_ci_low": c.difference.low, "mR_diff_ci_high": c.difference.high,
            "t_p": c.t_test.p_value, "t_p_holm": c.t_holm,
            "wilcoxon_p": c.wilcoxon.p_value, "wilcoxon_p_holm": c.wilcoxon_holm,
            "bootstrap_mR_diff": boot.difference if boot else None,
            "bootstrap_ci_low": boot.low if boot else None, "bootstrap_ci_high": boot.high if boot else None,
            "bootstrap_p": boot.p_value if boot else None, "bootstrap_p_holm": c.bootstrap_holm,
            "bootstrap_resamples": boot.resamples if boot else None,
            "notes": "; ".join(c.notes),
        })
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]], fallback_headers: list[str]) -> None:
    headers = list(rows[0]) if rows else fallback_headers
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _markdown(report: Report) -> str:
    lines = ["# Results", ""]
    for dataset in report.datasets:
        for table in (summary_table(report, dataset), cost_table(report, dataset)):
            lines += [f"## {table.title}", "", tabulate(table.rows, table.headers, tablefmt="github"), ""]
    if report.comparisons:
        table = comparison_table(report)
        lines += [f"## {table.title}", "", tabulate(table.rows, table.headers, tablefmt="github"), ""]
        lines += [f"- {line}" for line in method_legend(report) + comparison_notes(report)] + [""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    for name, entries in record_listings(report.collection).items():
        if entries:
            lines += [f"## {name.capitalize()} records (left out of the tables)", ""] + [f"- {e}" for e in entries] + [""]
    return "\n".join(lines)


LATEX_REPLACEMENTS = {"±": r"$\pm$", "Δ": r"$\Delta$"}
"""Characters that pdflatex without extra packages cannot typeset, replaced after tabulate's escaping."""


def _latex_table(table: TableData) -> str:
    text = tabulate(table.rows, table.headers, tablefmt="latex_booktabs")
    for character, command in LATEX_REPLACEMENTS.items():
        text = text.replace(character, command)
    return f"% {table.title}\n{text}"


def _latex(report: Report) -> tuple[str, str]:
    parts = []
    for dataset in report.datasets:
        parts += [_latex_table(summary_table(report, dataset)), _latex_table(cost_table(report, dataset))]
    return "\n\n".join(parts) + "\n", _latex_table(comparison_table(report)) + "\n"


def write_report(report: Report, folder: Path) -> list[Path]:
    """Write the Markdown, CSV, LaTeX and PNG files of ``report`` into ``folder`` and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    markdown = folder / MARKDOWN_FILE
    markdown.write_text(_markdown(report), encoding="utf-8")
    written.append(markdown)

    summary_csv, comparisons_csv = folder / SUMMARY_CSV, folder / COMPARISONS_CSV
    _write_csv(summary_csv, _csv_summary_rows(report), ["dataset", "method"])
    _write_csv(comparisons_csv, _csv_comparison_rows(report), ["dataset", "method", "reference"])
    written += [summary_csv, comparisons_csv]

    summary_tex, comparisons_tex = folder / SUMMARY_TEX, folder / COMPARISONS_TEX
    summary_text, comparison_text = _latex(report)
    summary_tex.write_text(summary_text, encoding="utf-8")
    comparisons_tex.write_text(comparison_text, encoding="utf-8")
    written += [summary_tex, comparisons_tex]

    if report.summaries:
        written.append(plot_mr_vs_params(report, folder / PARAMS_PLOT))
        history_plot = plot_validation_history(report, folder / HISTORY_PLOT)
        if history_plot is not None:
            written.append(history_plot)
    return written


# --------------------------------------------------------------------------- plots


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    return plt, figure, axes[0]


def _label_colours(report: Report, plt) -> dict[str, Any]:
    """Map each method label to one colour, the same in every panel of every plot."""
    labels = sorted({s.group.label for s in report.summaries})
    palette = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {label: palette(i % palette.N) for i, label in enumerate(labels)}


def plot_mr_vs_params(report: Report, path: Path) -> Path:
    """Plot test mR (mean ± std over seeds) against trainable parameters, log x, one panel per dataset.

    Methods with no trainable parameters cannot sit on a log axis, so they are drawn as a
    dashed horizontal line at their mR.
    """
    datasets = report.datasets
    plt, figure, axes = _figure(len(datasets))
    colours = _label_colours(report, plt)
    for axis, dataset in zip(axes, datasets):
        for summary in _dataset_summaries(report, dataset):
            mr = summary.metrics["mR"]
            error = mr.std or 0.0
            colour = colours[summary.group.label]
            if summary.trainable.mean <= 0:
                axis.axhline(mr.mean, linestyle="--", linewidth=1, color=colour, label=f"{summary.group.label} (0 params)")
                if error:
                    axis.axhspan(mr.mean - error, mr.mean + error, color=colour, alpha=0.12)
                continue
            axis.errorbar(summary.trainable.mean, mr.mean, yerr=error, fmt="o", capsize=3, color=colour, label=summary.group.label)
        axis.set_xscale("log")
        axis.set_xlabel("trainable parameters")
        axis.set_ylabel("test mR (%)")
        axis.set_title(dataset)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def validation_curves(report: Report, dataset: str) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """Return, per method label, epochs with the mean and sample std over seeds of validation mR."""
    curves = {}
    for summary in _dataset_summaries(report, dataset):
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for record in summary.group.records:
            for entry in (record.data.get("train") or {}).get("history") or []:
                val = entry.get("val") or {}
                if "mR" in val and "epoch" in entry:
                    per_epoch[int(entry["epoch"])].append(float(val["mR"]))
        if not per_epoch:
            continue
        epochs = sorted(per_epoch)
        means = [stats.summarize(per_epoch[e]).mean for e in epochs]
        stds = [stats.summarize(per_epoch[e]).std or 0.0 for e in epochs]
        curves[summary.group.label] = (epochs, means, stds)
    return curves


def plot_validation_history(report: Report, path: Path) -> Path | None:
    """Plot validation mR per epoch (mean over seeds, band ± std) per method.

    Returns the path, or None when no run recorded a validation history.
    """
    curves = {dataset: validation_curves(report, dataset) for dataset in report.datasets}
    datasets = [d for d, c in curves.items() if c]
    if not datasets:
        return None
    plt, figure, axes = _figure(len(datasets))
    colours = _label_colours(report, plt)
    for axis, dataset in zip(axes, datasets):
        for label, (epochs, means, stds) in curves[dataset].items():
            axis.plot(epochs, means, marker="o", color=colours[label], label=label)
            low = [m - s for m, s in zip(means, stds)]
            high = [m + s for m, s in zip(means, stds)]
            axis.fill_between(epochs, low, high, color=colours[label], alpha=0.15)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation mR (%)")
        axis.set_title(dataset)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
