"""End-to-end runs of the CLI and the run function on real files."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rsitr_bench.cli import app
from rsitr_bench.metrics import METRIC_KEYS, metrics_from_ranks
from rsitr_bench.records import read_records
from rsitr_bench.run import execute_run, make_run_config
from synthetic import write_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic"))


def _run(method, dataset, output_dir, seed=0, epochs=2, **train):
    config = make_run_config(
        method, str(dataset), {"output_dir": str(output_dir), "seed": seed, "device": "cpu"},
        {"epochs": epochs, "batch_size": 8, **train},
    )
    return execute_run(config).record


def _recompute(record):
    return metrics_from_ranks(torch.tensor(record["ranks"]["i2t"]), torch.tensor(record["ranks"]["t2i"]))


@pytest.mark.parametrize("method", ["zeroshot", "linear", "full", "lora"])
def test_method_writes_complete_record(method, dataset_folder, tmp_path):
    record = _run(method, dataset_folder, tmp_path)
    assert record["status"] == "completed"
    assert record["schema_version"] == 1
    for key in METRIC_KEYS:
        assert 0.0 <= record["metrics"]["test"][key] <= 100.0
    assert len(record["ranks"]["i2t"]) == 8
    assert len(record["ranks"]["t2i"]) == 40
    assert record["ranks"]["caption_image"] == [i for i in range(8) for _ in range(5)]
    for key in ("torch", "open_clip", "peft"):
        assert record["versions"][key]
    assert record["config"]["method"] == method
    assert record["params"]["total"] > record["params"]["trainable"] or method == "full"
    assert record["wall_time_s"] > 0
    assert record["peak_memory"]["cpu_rss_mb"] > 0
    assert "git_commit" in record
    on_disk = json.loads((tmp_path / "runs" / f"{record['run_id']}.json").read_text())
    assert on_disk == record
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("method", "settings"),
    [("adapter", {}), ("mrs_adapter", {}), ("rdb", {}), ("rdb", {"symmetric": True}), ("peft:ia3", {})],
)
def test_peft_method_runs_end_to_end(method, settings, dataset_folder, tmp_path):
    config = make_run_config(method, str(dataset_folder), {"output_dir": str(tmp_path), "device": "cpu"},
                             {"epochs": 1, "batch_size": 8}, settings)
    record = execute_run(config).record
    assert record["status"] == "completed"
    assert record["params"]["trainable"] == record["params"]["method"] + 1
    assert record["config"]["method_options"] == {**record["config"]["method_options"], **settings}


def test_hmmc_keeps_temperature_frozen(dataset_folder, tmp_path):
    config = make_run_config("mrs_adapter", str(dataset_folder), {"output_dir": str(tmp_path), "device": "cpu"},
                             {"epochs": 1, "batch_size": 8}, {"loss": "hmmc"})
    record = execute_run(config).record
    assert record["status"] == "completed"
    assert record["params"]["trainable"] == record["params"]["method"]


def test_trainable_params_per_method(dataset_folder, tmp_path):
    zeroshot = _run("zeroshot", dataset_folder, tmp_path)
    linear = _run("linear", dataset_folder, tmp_path, epochs=1)
    full = _run("full", dataset_folder, tmp_path, epochs=1)
    assert zeroshot["params"]["trainable"] == 0
    # visual.proj and text_projection are 128 x 128 each in rsitr-tiny, plus the logit scale.
    assert linear["params"]["trainable"] == 2 * 128 * 128 + 1
    assert full["params"]["trainable"] == full["params"]["total"]


def test_recalls_agree_with_stored_ranks(dataset_folder, tmp_path):
    record = _run("lora", dataset_folder, tmp_path)
    recomputed = _recompute(record)
    for key in METRIC_KEYS:
        assert record["metrics"]["test"][key] == pytest.approx(recomputed[key]), key


def test_same_seed_gives_identical_metrics(dataset_folder, tmp_path):
    first = _run("lora", dataset_folder, tmp_path / "a", seed=3)
    second = _run("lora", dataset_folder, tmp_path / "b", seed=3)
    assert first["metrics"] == second["metrics"]
    assert first["ranks"] == second["ranks"]
    assert first["train"]["history"] == second["train"]["history"]


def test_different_seed_changes_training(dataset_folder, tmp_path):
    first = _run("full", dataset_folder, tmp_path / "a", seed=0, lr_pretrained=1e-4)
    second = _run("full", dataset_folder, tmp_path / "b", seed=1, lr_pretrained=1e-4)
    assert first["train"]["history"][0]["train_loss"] != second["train"]["history"][0]["train_loss"]


def test_best_epoch_is_chosen_on_validation(dataset_folder, tmp_path):
    record = _run("full", dataset_folder, tmp_path, epochs=3, lr_pretrained=1e-4)
    history = record["train"]["history"]
    best = max(range(len(history)), key=lambda i: (history[i]["val"]["mR"], -i))
    assert record["train"]["best_epoch"] == best + 1
    assert record["metrics"]["val_best"] == history[best]["val"]


def test_training_beats_chance_on_learnable_data(dataset_folder, tmp_path):
    record = _run("full", dataset_folder, tmp_path, epochs=8, lr_pretrained=5e-4)
    zeroshot = _run("zeroshot", dataset_folder, tmp_path)
    assert record["metrics"]["test"]["mR"] > zeroshot["metrics"]["test"]["mR"]


def test_cli_run_prints_table(dataset_folder, tmp_path):
    result = runner.invoke(app, ["run", "--method", "lora", "--dataset", str(dataset_folder), "--epochs", "1",
                                 "--batch-size", "8", "--output-dir", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "mR" in result.output
    assert "Run record:" in result.output
    records, unreadable = read_records(tmp_path)
    assert len(records) == 1
    assert unreadable == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--method", "lorax"], "Unknown method 'lorax'. Did you mean lora?"),
        (["--method", "lora", "--set", "rank=4"], "Unknown setting 'rank'"),
        (["--method", "lora", "--set", "r=four"], "Invalid value 'four' for r: expected an integer"),
        (["--method", "lora", "--set", "train.epoch=2"], "Did you mean 'train.epochs'?"),
        (["--method", "lora", "--set", "train.lr=-1"], "Invalid train.lr = -1"),
        (["--method", "lora", "--model", "ViT-B-3"], "Unknown model 'ViT-B-3'"),
        (["--method", "lora", "--pretrained", "/no/such/weights.pt"], "Checkpoint /no/such/weights.pt not found"),
        (["--method", "lora", "--model", "ViT-B-32", "--pretrained", "demo"], "exist only for rsitr-tiny"),
        (["--method", "lora", "--model", "ViT-B-32", "--pretrained", "opneai"], "Unknown pretrained tag 'opneai'"),
    ],
)
def test_cli_rejects_bad_settings(arguments, expected, dataset_folder, tmp_path):
    result = runner.invoke(app, ["run", *arguments, "--dataset", str(dataset_folder), "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert expected in output
    assert "Traceback" not in result.output
    # Settings are checked before the dataset is read.
    assert "read precomp format" not in output


def test_bench_toml_unknown_table_is_rejected(dataset_folder, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text("[trian]\nepochs = 1\n")
    result = runner.invoke(app, ["run", "--method", "lora", "--dataset", str(dataset_folder), "--config", str(config)])
    assert result.exit_code == 1
    assert "Did you mean 'train'?" in " ".join(result.output.split())


def test_bench_toml_wrong_type_names_field(dataset_folder, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text('[train]\nepochs = "many"\n')
    result = runner.invoke(app, ["run", "--method", "lora", "--dataset", str(dataset_folder), "--config", str(config)])
    assert result.exit_code == 1
    assert "Invalid value 'many' for train.epochs: expected an integer" in " ".join(result.output.split())


def test_unknown_dataset_lists_known_names(tmp_path):
    result = runner.invoke(app, ["run", "--method", "lora", "--dataset", "rsicdd", "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "rsicd" in result.output


@pytest.mark.real_data
def test_lora_on_real_mini(real_data_root, tmp_path):
    result = runner.invoke(app, ["run", "--method", "lora", "--dataset", str(real_data_root / "mini"),
                                 "--epochs", "2", "--output-dir", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    records, _ = read_records(tmp_path)
    assert len(records) == 1
    record = records[0].data
    assert record["dataset_info"]["splits"]["test"] == {"images": 10, "captions": 50}
    recomputed = _recompute(record)
    for key in METRIC_KEYS:
        assert record["metrics"]["test"][key] == pytest.approx(recomputed[key]), key


@pytest.mark.real_data
def test_missing_rsicd_images_stop_the_run(real_data_root, tmp_path):
    result = runner.invoke(app, ["run", "--method", "full", "--dataset", "rsicd", "--data-root", str(real_data_root),
                                 "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "10,906 of 10,921 images are missing" in output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
