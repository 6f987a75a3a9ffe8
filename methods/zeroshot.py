"""Zero-shot: the frozen model, evaluated without training. The floor every method must beat."""

from __future__ import annotations

from methods import register_method
from methods.base import Method


@register_method
class ZeroShot(Method):
    name = "zeroshot"
    description = "frozen model, evaluation only"
    trains = False
