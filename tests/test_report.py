"""The report on synthetic run records: grouping, statistics, files and the CLI command."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rsitr_bench import report as report_module
from rsitr_bench import stats
from rsitr_bench.cli import app
from rsitr_bench.metrics import METRIC_KEYS, metrics_from_ranks
from rsitr_bench.records import SCHEMA_VERSION, run_key

NUM_IMAGES = 120
CAPTIONS_PER_IMAGE = 5


def _ranks(rng: np.random.Generator, success: float, images: np.ndarray, captions: np.ndarray) -> dict[str, list[int]]:
    """Draw geometric ranks around shared per-query difficulties; higher ``success`` is better."""
    i2t = rng.geometric(np.clip(images + success, 1e-3, 1)) - 1
    t2i = rng.geometric(np.clip(captions + success, 1e-3, 1)) - 1
    return {"i2t": i2t.tolist(), "t2i": t2i.tolist()}


def make_record(
    method: str,
    seed: int,
    ranks: dict[str, list[int]],
    dataset: str = "demo",
    status: str = "completed",
    method_options: dict[str, Any] | None = None,
    finished_at: str = "2026-01-01T00:00:00+00:00",
    trainable: int = 1000,
    caption_image: list[int] | None = None,
    history: list[float] | None = None,
) -> dict[str, Any]:
    """Build a run record with the keys the report reads, metrics computed from ``ranks``."""
    config = {
        "method": method, "dataset": dataset, "seed": seed, "data_root": None, "image_dir": None,
        "model": "rsitr-tiny", "pretrained": None, "output_dir": "results", "device": "cpu",
        "train": {"epochs": 2, "lr": 1e-3}, "method_options": dict(method_options or {}),
    }
    key = run_key(config)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": f"{key}_{finished_at[:10]}", "config_key": key,
        "status": status, "method": method, "dataset": dataset, "seed": seed, "config": config,
        "params": {"trainable": trainable, "method": max(trainable - 1, 0), "total": 10**6},
        "wall_time_s": 10.0 + seed, "peak_memory": {"cpu_rss_mb": 900.0 + seed},
        "finished_at": finished_at,
    }
    if status == "completed":
        i2t, t2i = torch.tensor(ranks["i2t"]), torch.tensor(ranks["t2i"])
        record["metrics"] = {"test": metrics_from_ranks(i2t, t2i)}
        record["ranks"] = dict(ranks)
        if caption_image is not None:
            record["ranks"]["caption_image"] = caption_image
        record["train"] = {"history": [{"epoch": e + 1, "val": {"mR": v}} for e, v in enumerate(history or [])]}
    else:
        record["error"] = {"reason": "loss is NaN", "epoch": 1, "step": 3}
    return record


def write_records(folder: Path, records: list[dict[str, Any]]) -> None:
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for index, record in enumerate(records):
        (runs / f"{record['run_id']}_{index}.json").write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder: baseline, a clearly better method and a twin of the baseline, 5 seeds.

    Also contains one truncated record file and one failed run.
    """
    rng = np.random.default_rng(0)
    image_difficulty = rng.beta(2, 5, NUM_IMAGES)
    caption_image = np.repeat(np.arange(NUM_IMAGES), CAPTIONS_PER_IMAGE)
    caption_difficulty = rng.beta(2, 5, caption_image.size)
    records = []
    for seed in range(5):
        for method, success, trainable in (("zeroshot", 0.0, 0), ("better", 0.2, 5000), ("twin", 0.0, 3000)):
            ranks = _ranks(rng, success, image_difficulty, caption_difficulty)
            history = [20.0 + seed + epoch * (5 if method == "better" else 1) for epoch in range(3)]
            records.append(make_record(method, seed, ranks, trainable=trainable, caption_image=caption_image.tolist(),
                                       history=history if method != "zeroshot" else None))
    records.append(make_record("better", 7, {}, status="failed"))
    write_records(tmp_path, records)
    (tmp_path / "runs" / "truncated.json").write_text('{"schema_version": 1, "run_id": "x", "sta', encoding="utf-8")
    return tmp_path


def _row(table: report_module.TableData, label: str) -> list[str]:
    return next(row for row in table.rows if row[0] == label or label in row[:2])


def test_collect_sorts_records(results: Path) -> None:
    collection = report_module.collect_runs(results)
    assert sorted(g.label for g in collection.groups) == ["better", "twin", "zeroshot"]
    assert [u.path.name for u in collection.unreadable] == ["truncated.json"]
    assert [r.data["seed"] for r in collection.failed] == [7]
    assert all(len(g.records) == 5 for g in collection.groups)


def test_summary_mean_and_sample_std(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=500)
    better = next(s for s in built.summaries if s.group.label == "better")
    values = [r.data["metrics"]["test"]["mR"] for r in better.group.records]
    assert better.metrics["mR"].mean == pytest.approx(np.mean(values))
    assert better.metrics["mR"].std == pytest.approx(np.std(values, ddof=1))
    assert better.metrics["mR"].n == 5
    assert better.wall_time_s.mean == pytest.approx(12.0)
    row = _row(report_module.summary_table(built, "demo"), "better")
    assert row[7] == f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"
    assert row[8] == "5.00K"


def test_better_method_is_significant(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=1000)
    better = next(c for c in built.comparisons if c.label == "better")
    assert better.difference.estimate > 0
    assert better.t_test.p_value < 0.01
    assert better.t_holm < 0.05
    assert better.bootstrap.p_value < 0.01
    assert better.bootstrap_holm < 0.05
    row = _row(report_module.comparison_table(built), "better")
    assert row[5].endswith("*)")
    assert row[8].endswith("*)")


def test_twin_method_is_not_significant(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=1000)
    twin = next(c for c in built.comparisons if c.label == "twin")
    assert twin.bootstrap_holm > 0.05
    assert twin.t_holm > 0.05
    assert "*" not in "".join(_row(report_module.comparison_table(built), "twin"))


def test_holm_adjusts_across_comparisons(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=500)
    raw = [c.t_test.p_value for c in built.comparisons]
    assert [c.t_holm for c in built.comparisons] == pytest.approx(stats.holm(raw))


def test_five_seeds_wilcoxon_note(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=200)
    assert all(c.wilcoxon.p_value is None for c in built.comparisons)
    notes = report_module.comparison_notes(built)
    assert any("n=5 seeds: Wilcoxon cannot reach p<0.05" in note for note in notes)


def test_six_seeds_run_wilcoxon(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images, captions = rng.beta(2, 5, 30), rng.beta(2, 5, 150)
    records = [make_record(m, s, _ranks(rng, boost, images, captions))
               for s in range(6) for m, boost in (("zeroshot", 0.0), ("better", 0.3))]
    write_records(tmp_path, records)
    built = report_module.build_report(tmp_path, "zeroshot", resamples=200)
    (comparison,) = built.comparisons
    assert comparison.wilcoxon.p_value == pytest.approx(0.03125)


def test_missing_caption_map_skips_bootstrap(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images, captions = rng.beta(2, 5, 20), rng.beta(2, 5, 100)
    records = [make_record(m, s, _ranks(rng, 0.0, images, captions)) for s in range(2) for m in ("zeroshot", "lora")]
    write_records(tmp_path, records)
    built = report_module.build_report(tmp_path, "zeroshot", resamples=200)
    (comparison,) = built.comparisons
    assert comparison.bootstrap is None
    assert any("bootstrap skipped" in note and "caption_image" in note for note in comparison.notes)


def test_duplicate_runs_use_newest(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images, captions = rng.beta(2, 5, 20), rng.beta(2, 5, 100)
    old = make_record("lora", 0, _ranks(rng, 0.0, images, captions), finished_at="2026-01-01T00:00:00+00:00")
    new = make_record("lora", 0, _ranks(rng, 0.5, images, captions), finished_at="2026-02-01T00:00:00+00:00")
    write_records(tmp_path, [new, old])
    collection = report_module.collect_runs(tmp_path)
    (group,) = collection.groups
    assert group.records[0].data["finished_at"].startswith("2026-02")
    assert any("using the newest" in note for note in collection.notes)


def test_settings_variants_get_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    images, captions = rng.beta(2, 5, 20), rng.beta(2, 5, 100)
    records = [make_record("lora", 0, _ranks(rng, 0.0, images, captions), method_options={"r": r}) for r in (4, 8)]
    write_records(tmp_path, records)
    labels = sorted(g.label for g in report_module.collect_runs(tmp_path).groups)
    assert labels == ["lora (r=4)", "lora (r=8)"]


def test_one_seed_std_is_na(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    images, captions = rng.beta(2, 5, 20), rng.beta(2, 5, 100)
    write_records(tmp_path, [make_record("lora", 0, _ranks(rng, 0.0, images, captions))])
    built = report_module.build_report(tmp_path, None)
    assert "± n/a" in report_module.summary_table(built, "demo").rows[0][7]
    assert any("No reference method" in note for note in built.notes)


def test_write_report_files(results: Path) -> None:
    built = report_module.build_report(results, "zeroshot", resamples=300)
    written = report_module.write_report(built, results)
    names = {path.name for path in written}
    assert names == {
        "report.md", "report_summary.csv", "report_comparisons.csv", "report_summary.tex",
        "report_comparisons.tex", "report_mr_vs_params.png", "report_val_mr_per_epoch.png",
    }
    for path in written:
        assert path.stat().st_size > 0
    for name in ("report_mr_vs_params.png", "report_val_mr_per_epoch.png"):
        assert (results / name).read_bytes().startswith(b"\x89PNG")

    with (results / "report_summary.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["method"] for row in rows) == ["better", "twin", "zeroshot"]
    assert all(row["n"] == "5" for row in rows)
    assert set(f"{key}_mean" for key in METRIC_KEYS) <= set(rows[0])

    markdown = (results / "report.md").read_text(encoding="utf-8")
    assert "| method" in markdown
    assert "truncated.json" in markdown
    assert "## Failed records" in markdown
    assert "loss is NaN" in markdown

    latex = (results / "report_summary.tex").read_text(encoding="utf-8")
    assert "\\toprule" in latex
    assert "$\\pm$" in latex


def test_validation_curves_average_seeds(results: Path) -> None:
    built = report_module.build_report(results, None)
    curves = report_module.validation_curves(built, "demo")
    epochs, means, stds = curves["better"]
    assert epochs == [1, 2, 3]
    assert means == pytest.approx([22.0, 27.0, 32.0])  # 20 + mean(seed) + 5 * epoch
    assert stds[0] == pytest.approx(np.std(range(5), ddof=1))
    assert "zeroshot" not in curves


def test_format_params() -> None:
    assert report_module.format_params(0) == "0"
    assert report_module.format_params(950) == "950"
    assert report_module.format_params(49153) == "49.2K"
    assert report_module.format_params(1_050_000) == "1.05M"
    assert report_module.format_params(151_277_313) == "151M"


def _flat(text: str) -> str:
    """Join the lines that rich wrapped at the terminal width."""
    return " ".join(text.split())


def test_report_command_lists_problems(results: Path) -> None:
    outcome = CliRunner().invoke(app, ["report", "--output-dir", str(results), "--reference", "zeroshot",
                                       "--bootstrap-resamples", "300"])
    output = _flat(outcome.output)
    assert outcome.exit_code == 0, outcome.output
    assert "truncated.json" in output
    assert "Failed runs (left out of the tables)" in output
    assert "seed 7" in output
    assert "Wrote" in output
    assert "report.md" in output


def test_report_command_without_records(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["report", "--output-dir", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "does not exist" in _flat(outcome.output)
