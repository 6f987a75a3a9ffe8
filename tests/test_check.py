"""The CI check: the [check] table, comparison with the baseline, and the command end to end."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rsitr_bench import check as check_module
from rsitr_bench.cli import app
from rsitr_bench.metrics import METRIC_KEYS

REPOSITORY = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    """Join the lines that rich wrapped at the terminal width."""
    return " ".join(text.split())


def test_repository_check_table_parses() -> None:
    with (REPOSITORY / "bench.toml").open("rb") as handle:
        spec = check_module.parse_check_table(tomllib.load(handle), REPOSITORY)
    assert spec.entries
    assert spec.tolerance > 0
    assert spec.baseline.parent == REPOSITORY / "benchmarks"


def test_check_entry_keys_are_routed(tmp_path: Path) -> None:
    bench = {"check": {"runs": [{"method": "lora", "dataset": "demo", "epochs": 1, "seed": 3, "r": 4, "train": {"lr": 0.01}}]}}
    spec = check_module.parse_check_table(bench, tmp_path)
    (entry,) = spec.entries
    assert entry.run_values == {"seed": 3}
    assert entry.train_values == {"lr": 0.01, "epochs": 1}
    assert entry.method_values == {"r": 4}
    assert entry.name == "lora/demo (epochs=1, seed=3, r=4)"
    assert spec.tolerance == check_module.DEFAULT_TOLERANCE_PP
    assert spec.baseline == tmp_path / check_module.DEFAULT_BASELINE
    assert spec.device == "cpu"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"runs": []}, "non-empty list"),
        ({"runs": [{"method": "lora"}]}, "'dataset' is missing"),
        ({"runs": [{"method": "lora", "dataset": "demo"}] * 2}, "distinct `name`"),
        ({"runs": [{"method": "lora", "dataset": "demo"}], "tolerence": 1}, "check.tolerance"),
        ({"runs": [{"method": "lora", "dataset": "demo"}], "tolerance": -1}, "-1"),
    ],
)
def test_check_table_invalid(tmp_path: Path, table: dict[str, Any], message: str) -> None:
    with pytest.raises(check_module.CheckError, match=message):
        check_module.parse_check_table({"check": table}, tmp_path)


def test_dataset_needing_data_root_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RSITR_DATA_ROOT", raising=False)
    value, reason = check_module.resolve_check_dataset("mini", None)
    assert value is None
    assert "RSITR_DATA_ROOT" in reason
    assert check_module.resolve_check_dataset("demo", None) == ("demo", None)


def test_dataset_under_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RSITR_DATA_ROOT", str(tmp_path))
    assert check_module.resolve_check_dataset("mini", None) == (str(tmp_path / "mini"), None)
    assert check_module.resolve_check_dataset("RSICD", None) == ("rsicd", None)


def _record(metrics: dict[str, float], trainable: int = 100, epochs: int = 1) -> dict[str, Any]:
    return {
        "method": "lora", "dataset": "mini",
        "config": {"method": "lora", "dataset": "/data/mini", "seed": 0, "output_dir": "/tmp/x", "device": "cpu",
                   "data_root": None, "image_dir": None, "train": {"epochs": epochs}, "method_options": {"r": 4}},
        "metrics": {"test": dict(metrics)}, "params": {"trainable": trainable}, "wall_time_s": 1.0,
    }


BASE_METRICS = {"i2t_R@1": 10.0, "i2t_R@5": 30.0, "i2t_R@10": 40.0, "t2i_R@1": 8.0, "t2i_R@5": 30.0, "t2i_R@10": 50.0, "mR": 28.0}


def _verdict(current: dict[str, float], tolerance: float = 0.5, **record_changes: Any) -> check_module.EntryVerdict:
    entry = check_module.CheckEntry("lora/mini", "lora", "mini", {}, {}, {})
    baseline = {"entries": {"lora/mini": check_module.baseline_entry(_record(BASE_METRICS))}}
    outcome = check_module.EntryRun(entry, record=_record(current, **record_changes))
    return check_module.compare_with_baseline(outcome, baseline, tolerance)


def test_compare_within_tolerance_passes() -> None:
    verdict = _verdict({**BASE_METRICS, "mR": 27.6, "i2t_R@1": 10.4})
    assert verdict.status == "passed"
    assert verdict.max_abs_difference == pytest.approx(0.4)


def test_compare_drop_beyond_tolerance_regresses() -> None:
    verdict = _verdict({**BASE_METRICS, "mR": 26.0, "t2i_R@1": 9.0})
    assert verdict.status == "regressed"
    assert [c.metric for c in verdict.regressions] == ["mR"]
    assert verdict.regressions[0].describe() == "mR 28.00 -> 26.00 (-2.00 pp)"
    assert [c.metric for c in verdict.improvements] == ["t2i_R@1"]


def test_compare_improvement_only_passes() -> None:
    verdict = _verdict({**BASE_METRICS, "mR": 31.0})
    assert verdict.ok
    assert verdict.improvements[0].difference == pytest.approx(3.0)


def test_compare_changed_settings_fails() -> None:
    verdict = _verdict(BASE_METRICS, epochs=2)
    assert verdict.status == "failed"
    assert "train.epochs: 1 -> 2" in verdict.messages[0]
    assert "--update" in verdict.messages[0]


def test_compare_changed_parameter_count_fails() -> None:
    verdict = _verdict(BASE_METRICS, trainable=101)
    assert verdict.status == "failed"
    assert "100 -> 101" in verdict.messages[0]


def test_compare_ignores_machine_paths() -> None:
    record = _record(BASE_METRICS)
    moved = _record(BASE_METRICS)
    moved["config"].update(dataset="/other/mini", output_dir="/elsewhere", device="cuda")
    assert check_module.comparable_settings(record) == check_module.comparable_settings(moved)


def test_update_keeps_failed_and_skipped_entries(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    entries = {name: check_module.CheckEntry(name, "lora", "mini", {}, {}, {}) for name in ("ok", "failed", "skipped")}
    previous = {"entries": {name: check_module.baseline_entry(_record(BASE_METRICS)) for name in entries}}
    improved = {**BASE_METRICS, "mR": 40.0}
    outcomes = [
        check_module.EntryRun(entries["ok"], record=_record(improved)),
        check_module.EntryRun(entries["failed"], record=_record({**BASE_METRICS, "mR": 1.0}), error="non-finite loss"),
        check_module.EntryRun(entries["skipped"], skipped="needs a data root"),
    ]
    updated = check_module.write_baseline(path, outcomes, previous)
    written = json.loads(path.read_text())["entries"]
    assert updated == ["ok"]
    assert written["ok"]["metrics"]["mR"] == 40.0
    assert written["failed"] == previous["entries"]["failed"]
    assert written["skipped"] == previous["entries"]["skipped"]


def test_missing_baseline_says_update(tmp_path: Path) -> None:
    with pytest.raises(check_module.CheckError, match="check --update"):
        check_module.load_baseline(tmp_path / "none.json")


def _bench(path: Path, dataset: Path) -> Path:
    path.write_text(
        "[check]\n"
        'baseline = "baseline.json"\n'
        "tolerance = 0.5\n"
        f'runs = [{{ method = "lora", dataset = "{dataset}", epochs = 1, r = 4 }}]\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.real_data
def test_check_command_end_to_end(real_data_root: Path, tmp_path: Path) -> None:
    bench = _bench(tmp_path / "bench.toml", real_data_root / "mini")
    runner = CliRunner()

    missing = runner.invoke(app, ["check", str(bench)])
    assert missing.exit_code == 1
    assert "check --update" in _flat(missing.output)

    created = runner.invoke(app, ["check", str(bench), "--update"])
    assert created.exit_code == 0, created.output
    baseline_path = tmp_path / "baseline.json"
    baseline = json.loads(baseline_path.read_text())
    (name,) = baseline["entries"]
    assert set(baseline["entries"][name]["metrics"]) == set(METRIC_KEYS)

    passed = runner.invoke(app, ["check", str(bench)])
    assert passed.exit_code == 0, passed.output
    assert "Check passed" in _flat(passed.output)

    # A baseline 2 pp above the current mR plays the part of a change that made the
    # method worse. A t2i R@10 baseline 3 pp below the current value is an improvement.
    entry = baseline["entries"][name]
    current_mr = entry["metrics"]["mR"]
    entry["metrics"]["mR"] = current_mr + 2.0
    entry["metrics"]["t2i_R@10"] -= 3.0
    baseline_path.write_text(json.dumps(baseline))
    failed = runner.invoke(app, ["check", str(bench)])
    output = _flat(failed.output)
    assert failed.exit_code == 1
    assert f"REGRESSED {name}: mR {current_mr + 2:.2f} -> {current_mr:.2f} (-2.00 pp)" in output
    assert f"Note: {name} improved: t2i_R@10" in output
    assert "(+3.00 pp)" in output
    assert "Check failed: 1 of 1 runs" in output


def test_check_catches_broken_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Full fine-tuning learns the synthetic colour dataset well above chance in a few epochs.
    # A bug that zeroes the learning rate schedule leaves the model untrained, and the check
    # must report the drop.
    from synthetic import write_dataset

    import rsitr_bench.train as train_module

    dataset = write_dataset(tmp_path / "data", train=48)
    bench = tmp_path / "bench.toml"
    bench.write_text(
        "[check]\n"
        "tolerance = 1.0\n"
        'baseline = "baseline.json"\n'
        'device = "cpu"\n'
        f'runs = [{{ method = "full", dataset = "{dataset}", epochs = 6, batch_size = 8, lr_pretrained = 5e-4 }}]\n'
    )
    runner = CliRunner()
    created = runner.invoke(app, ["check", str(bench), "--update"])
    assert created.exit_code == 0, created.output

    monkeypatch.setattr(train_module, "warmup_cosine", lambda total_steps, warmup_ratio: (lambda step: 0.0))
    degraded = runner.invoke(app, ["check", str(bench)])
    output = _flat(degraded.output)
    assert degraded.exit_code == 1, output
    assert "REGRESSED" in output
    assert "mR" in output
    assert "Check failed: 1 of 1 runs" in output
