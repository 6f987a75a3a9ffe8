"""The method registry.

A method is a ``methods.base.Method`` subclass registered with ``@register_method``. Every
module of this package except ``base`` registers its methods when ``load_builtin_methods``
imports it, so adding a method means adding one file.
Third-party packages add methods through the ``rsitr_bench.methods`` entry-point group,
whose entries point at a module (imported for its registrations) or a Method subclass.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import logging
import pkgutil
import re
from importlib.metadata import entry_points

from methods.base import Method, MethodConfig
from rsitr_bench.errors import UserError

_logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rsitr_bench.methods"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

_REGISTRY: dict[str, type[Method]] = {}
_FACTORIES: dict[str, type[Method]] = {}
"""Prefix families such as ``peft:``: the part after the colon is passed to the class."""
_loaded = False


def register_method(cls: type[Method]) -> type[Method]:
    """Register a Method subclass under ``cls.name``; use as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"{cls!r} is not a subclass of methods.base.Method")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid method name {name!r} on {cls.__qualname__}: use lower-case letters, digits "
            "and underscores, starting with a letter"
        )
    if name in _REGISTRY or f"{name}:" in _FACTORIES:
        existing = _REGISTRY.get(name) or _FACTORIES[f"{name}:"]
        raise ValueError(
            f"method {name!r} is already registered by {existing.__module__}.{existing.__qualname__}; "
            "choose another name"
        )
    _validate_config_class(cls)
    _REGISTRY[name] = cls
    return cls


def register_method_family(prefix: str):
    """Register a family of methods named ``<prefix>:<variant>`` (for example ``peft:ia3``)."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not NAME_PATTERN.match(prefix):
            raise ValueError(f"invalid method family prefix {prefix!r}")
        key = f"{prefix}:"
        if key in _FACTORIES or prefix in _REGISTRY:
            raise ValueError(f"method family {prefix!r} is already registered")
        _validate_config_class(cls)
        _FACTORIES[key] = cls
        return cls

    return decorate


def _validate_config_class(cls: type[Method]) -> None:
    config_class = cls.config_class
    if not (dataclasses.is_dataclass(config_class) and issubclass(config_class, MethodConfig)):
        raise TypeError(f"{cls.__qualname__}.config_class must be a dataclass subclass of MethodConfig")
    for config_field in dataclasses.fields(config_class):
        if not config_field.metadata.get("help"):
            raise ValueError(
                f"field {config_field.name!r} of {config_class.__qualname__} has no help text; "
                'declare it with field(default=..., metadata={"help": "..."})'
            )


def load_builtin_methods() -> None:
    """Import the built-in method modules and the entry-point plug-ins, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        if module != "base" and not module.startswith("_"):
            importlib.import_module(f"methods.{module}")
    load_entry_point_methods()


def load_entry_point_methods() -> None:
    """Import the methods that installed packages declare in the ``rsitr_bench.methods`` group."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
        except Exception as error:  # noqa: BLE001 - a broken plug-in must not hide the built-ins
            _logger.warning("Skipped method plug-in %s: it failed to import: %s", entry_point.value, error)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Method) and loaded.name not in _REGISTRY:
            register_method(loaded)


def method_names() -> list[str]:
    """Return registered names; families appear as ``prefix:<type>``."""
    load_builtin_methods()
    return list(_REGISTRY) + [f"{prefix}<type>" for prefix in _FACTORIES]


def get_method_class(name: str) -> tuple[type[Method], str | None]:
    """Return the class registered for ``name`` and, for a family, the variant after the colon."""
    load_builtin_methods()
    if name in _REGISTRY:
        return _REGISTRY[name], None
    if ":" in name:
        prefix, variant = name.split(":", 1)
        if f"{prefix}:" in _FACTORIES and variant:
            return _FACTORIES[f"{prefix}:"], variant
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UserError(f"Unknown method {name!r}.{hint} Known methods: {', '.join(method_names())}.")


def create_method(name: str, config: MethodConfig | None = None) -> Method:
    cls, variant = get_method_class(name)
    if variant is None:
        return cls(config)
    return cls(config, variant=variant)
