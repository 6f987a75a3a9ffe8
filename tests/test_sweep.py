"""The sweep: the [sweep] table, sharding, skipping finished runs, failures and interrupts."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from rsitr_bench import sweep as sweep_module
from rsitr_bench.cli import app
from rsitr_bench.config import ConfigError
from rsitr_bench.errors import UserError
from rsitr_bench.records import read_records
from rsitr_bench.run import RunResult
from rsitr_bench.train import RunInterrupted

REPOSITORY = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    """Join the lines that rich wrapped at the terminal width."""
    return " ".join(text.split())


def _spec(**changes: Any) -> dict[str, Any]:
    table = {"methods": ["zeroshot", "lora"], "datasets": ["demo"], "seeds": [0, 1, 2], "reference": "zeroshot"}
    table.update(changes)
    return {"sweep": table}


def test_repository_sweep_table_parses() -> None:
    with (REPOSITORY / "bench.toml").open("rb") as handle:
        spec = sweep_module.parse_sweep_table(tomllib.load(handle))
    assert spec.reference in spec.methods
    assert spec.seeds


def test_sweep_table_valid() -> None:
    spec = sweep_module.parse_sweep_table(_spec())
    assert spec.methods == ["zeroshot", "lora"]
    assert spec.seeds == [0, 1, 2]
    assert spec.reference == "zeroshot"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": [0]}, "sweep.seeds"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, 0]}, "more than once"),
        ({"seeds": ["a"]}, "'a'"),
        ({"methods": "lora"}, "'lora'"),
        ({"methods": ["lora", "lora"]}, "lora listed more than once"),
        ({"reference": "full"}, "'full'"),
    ],
)
def test_sweep_table_invalid(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sweep_module.parse_sweep_table(_spec(**changes))


def test_sweep_table_missing() -> None:
    with pytest.raises(ConfigError, match=r"no \[sweep\] table"):
        sweep_module.parse_sweep_table({})


@pytest.mark.parametrize("text", ["1/4", "4/4", " 2 / 3 "])
def test_parse_shard_valid(text: str) -> None:
    index, count = sweep_module.parse_shard(text)
    assert 1 <= index <= count


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2", "-1/3"])
def test_parse_shard_invalid_names_value(text: str) -> None:
    with pytest.raises(ConfigError, match=f"--shard '{text}'"):
        sweep_module.parse_shard(text)


@given(total=st.integers(0, 60), count=st.integers(1, 9))
def test_shards_disjoint_and_complete(total: int, count: int) -> None:
    shares = [sweep_module.shard_indices(total, (i, count)) for i in range(1, count + 1)]
    flat = [index for share in shares for index in share]
    assert sorted(flat) == list(range(total))
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1


def test_grid_order_pairs_seeds_early() -> None:
    spec = sweep_module.parse_sweep_table(_spec(datasets=["a", "b"], seeds=[0, 1]))
    cells = sweep_module.grid(spec)
    assert cells[:4] == [("a", 0, "zeroshot"), ("a", 0, "lora"), ("a", 1, "zeroshot"), ("a", 1, "lora")]
    assert len(cells) == 8


def _bench(dataset: str, output_dir: Path, **sweep: Any) -> dict[str, Any]:
    table = {"methods": ["zeroshot", "lora"], "datasets": [dataset], "seeds": [0, 1, 2], "reference": "zeroshot"}
    table.update(sweep)
    return {"run": {"output_dir": str(output_dir), "device": "cpu"}, "train": {"epochs": 1}, "sweep": table}


def test_plan_shards_cover_grid(tmp_path: Path) -> None:
    dataset = tmp_path / "mini"
    dataset.mkdir()
    bench = _bench(str(dataset), tmp_path / "out")
    spec = sweep_module.parse_sweep_table(bench)
    whole = sweep_module.plan_sweep(bench, spec)
    shares = [sweep_module.plan_sweep(bench, spec, shard=(i, 4)) for i in range(1, 5)]
    keys = [p.key for share in shares for p in share]
    assert sorted(keys) == sorted(p.key for p in whole)
    assert len(set(keys)) == len(keys) == 6
    assert all(p.action == "run" for p in whole)


def test_plan_rejects_unknown_method(tmp_path: Path) -> None:
    dataset = tmp_path / "mini"
    dataset.mkdir()
    bench = _bench(str(dataset), tmp_path / "out", methods=["zeroshot", "lorra"], reference="zeroshot")
    with pytest.raises(UserError, match="lorra"):
        sweep_module.plan_sweep(bench, sweep_module.parse_sweep_table(bench))


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value)


def _write_bench(path: Path, bench: dict[str, Any]) -> Path:
    """Write ``bench`` as a TOML file with one table per top-level key."""
    lines = []
    for table, values in bench.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sweep_records_failure_and_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = tmp_path / "mini"
    dataset.mkdir()
    bench = _write_bench(tmp_path / "bench.toml", _bench(str(dataset), tmp_path / "out", seeds=[0]))
    calls = []

    def fake_execute_run(config, resume=False, progress=None):
        calls.append(config.method)
        if config.method == "zeroshot":
            raise RuntimeError("out of memory on purpose")
        record = {"metrics": {"test": {"mR": 12.5}}}
        return RunResult(record=record, record_path=None)

    monkeypatch.setattr("rsitr_bench.run.execute_run", fake_execute_run)
    outcome = CliRunner().invoke(app, ["sweep", str(bench)])
    output = _flat(outcome.output)
    assert outcome.exit_code == 1, outcome.output
    assert calls == ["zeroshot", "lora"]
    assert "failed: zeroshot on" in output
    assert "out of memory on purpose" in output
    records, unreadable = read_records(tmp_path / "out")
    assert not unreadable
    assert [(r.data["method"], r.data["status"]) for r in records] == [("zeroshot", "failed")]


def test_sweep_interrupt_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = tmp_path / "mini"
    dataset.mkdir()
    bench = _write_bench(tmp_path / "bench.toml", _bench(str(dataset), tmp_path / "out", seeds=[0], methods=["lora"], reference="lora"))
    plan = sweep_module.plan_sweep(tomllib.loads(bench.read_text()), sweep_module.parse_sweep_table(tomllib.loads(bench.read_text())))
    checkpoint = sweep_module.checkpoint_path(plan[0].config, plan[0].key)
    resume_flags = []

    def interrupted_run(config, resume=False, progress=None):
        resume_flags.append(resume)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(b"checkpoint")
        raise RunInterrupted("SIGINT", checkpoint)

    monkeypatch.setattr("rsitr_bench.run.execute_run", interrupted_run)
    outcome = CliRunner().invoke(app, ["sweep", str(bench)])
    assert outcome.exit_code == 130
    assert "Run the same command again to resume" in _flat(outcome.output)

    def resumed_run(config, resume=False, progress=None):
        resume_flags.append(resume)
        return RunResult(record={"metrics": {"test": {"mR": 1.0}}}, record_path=None)

    monkeypatch.setattr("rsitr_bench.run.execute_run", resumed_run)
    dry = CliRunner().invoke(app, ["sweep", str(bench), "--dry-run"])
    assert "resume" in dry.output
    outcome = CliRunner().invoke(app, ["sweep", str(bench)])
    assert outcome.exit_code == 0, outcome.output
    assert resume_flags == [False, True]


@pytest.mark.slow
@pytest.mark.real_data
def test_sweep_twice_skips_finished(real_data_root: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "out"
    bench = _bench(str(real_data_root / "mini"), output_dir, seeds=[0])
    bench_path = _write_bench(tmp_path / "bench.toml", bench)

    first = CliRunner().invoke(app, ["sweep", str(bench_path)])
    assert first.exit_code == 0, first.output
    records, _ = read_records(output_dir)
    assert sorted(r.data["method"] for r in records) == ["lora", "zeroshot"]
    assert all(r.data["status"] == "completed" for r in records)

    second = CliRunner().invoke(app, ["sweep", str(bench_path)])
    assert second.exit_code == 0, second.output
    assert "2 already completed, 0 to run" in _flat(second.output)
    again, _ = read_records(output_dir)
    assert sorted(r.path.name for r in again) == sorted(r.path.name for r in records)

    # A changed setting makes a new configuration, which runs again.
    bench["methods"] = {"lora": {"r": 4}}
    _write_bench(bench_path, bench)
    plan = sweep_module.plan_sweep(bench, sweep_module.parse_sweep_table(bench))
    assert [(p.method, p.action) for p in plan] == [("zeroshot", "skip"), ("lora", "run")]
