"""The method plug-in API: the documented example runs, and entry points add methods."""

import logging
import re
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import methods
from methods.base import Method, MethodConfig
from rsitr_bench.run import execute_run, make_run_config
from synthetic import write_dataset

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-method.md"


@pytest.fixture
def clean_registry():
    methods.load_builtin_methods()
    before = set(methods._REGISTRY)
    yield
    for name in set(methods._REGISTRY) - before:
        methods._REGISTRY.pop(name)


def test_documented_example_trains(clean_registry, tmp_path):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    module = types.ModuleType("methods.output_scale_example")
    exec(compile(code, str(DOC), "exec"), module.__dict__)

    dataset = write_dataset(tmp_path / "data")
    config = make_run_config("output_scale", str(dataset), {"output_dir": str(tmp_path / "out"), "device": "cpu"},
                             {"epochs": 1, "batch_size": 8}, {"init": 0.5})
    record = execute_run(config).record
    assert record["status"] == "completed"
    assert record["params"]["method"] == 2
    assert record["config"]["method_options"] == {"init": 0.5}


@dataclass
class _PluginConfig(MethodConfig):
    pass


class _PluginMethod(Method):
    name = "plugin_method"
    config_class = _PluginConfig


class _EntryPoint:
    def __init__(self, value, loader):
        self.value = value
        self._loader = loader

    def load(self):
        return self._loader()


def _broken():
    raise ImportError("no module named missing_dependency")


def test_entry_point_adds_method(clean_registry, monkeypatch, caplog):
    points = [_EntryPoint("other_package:PluginMethod", lambda: _PluginMethod), _EntryPoint("broken:Method", _broken)]
    monkeypatch.setattr(methods, "entry_points", lambda group: points if group == "rsitr_bench.methods" else [])
    with caplog.at_level(logging.WARNING, logger="methods"):
        methods.load_entry_point_methods()
    assert methods.get_method_class("plugin_method") == (_PluginMethod, None)
    assert "broken:Method" in caplog.text
    assert "no module named missing_dependency" in caplog.text
