"""`rsitr-bench datasets` and `rsitr-bench methods` on real files and real models."""

import re

import pytest
from typer.testing import CliRunner

from rsitr_bench.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


def _row(output: str, dataset: str, split: str) -> list[str]:
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]
        if cells[:2] == [dataset, split]:
            return cells
    raise AssertionError(f"no row for {dataset} {split} in:\n{output}")


@pytest.mark.real_data
def test_datasets_counts_published_splits(real_data_root):
    result = runner.invoke(app, ["datasets", "--data-root", str(real_data_root)])
    assert result.exit_code == 0, result.output
    expected = {
        # dataset, split: images, captions, images without captions, missing images
        ("rsicd", "train"): ["9,828", "49,140", "0", "9,813"],
        ("rsicd", "test"): ["1,093", "5,465", "0", "1,093"],
        ("rsitmd", "train"): ["4,291", "21,435", "4", "4,286"],
        ("rsitmd", "test"): ["452", "2,260", "0", "452"],
        ("ucm", "train"): ["1,680", "8,400", "0", "1,671"],
        ("ucm", "test"): ["210", "1,050", "0", "210"],
        ("sydney", "train"): ["497", "2,485", "0", "488"],
        ("sydney", "test"): ["58", "290", "0", "58"],
    }
    for (dataset, split), counts in expected.items():
        assert _row(result.output, dataset, split)[2:6] == counts, (dataset, split)
    flat = " ".join(result.output.split())
    assert "Dropped empty captions: 20 from the published splits" in flat
    assert "standard Karpathy val split" in flat


def test_datasets_without_data_root_explains(monkeypatch):
    monkeypatch.delenv("RSITR_DATA_ROOT", raising=False)
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 1
    assert "--data-root" in result.output


def test_methods_lists_every_family():
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0, result.output
    for name in ("zeroshot", "linear", "full", "lora", "adapter", "mrs_adapter", "rdb", "peft:<type>"):
        assert name in result.output
    assert _row(result.output, "zeroshot", "0")
    # rsitr-tiny: two 128 x 128 projections.
    assert _row(result.output, "linear", "32,768")
