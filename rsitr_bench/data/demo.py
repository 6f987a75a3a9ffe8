"""Embedded demo dataset: synthetic top-down scenes, each with five captions.

``ensure_demo`` writes the dataset once per cache folder and returns its folder. The folder
uses the precomp layout. ``<split>_filename.txt`` lists one image file name per line, and
``<split>_caps.txt`` lists the five captions of each image on five consecutive lines. The
images are 64x64 RGB PNG files under ``images/``. File names have the form
``<scene>_<n>.png``, so the scene class is the part before the last underscore.

Every image comes from a sampled ``Scene``: a list of elements (fields, roads, buildings,
planes, boats, trees, ...) with their count, colour, position and the shapes that draw them.
The captions are written from the same ``Scene``, so they name only elements that are in the
picture, in the region where they are drawn.

Generation is deterministic: with the same numpy and Pillow installation, two runs write
byte-identical files, whatever the hash seed of the process.
NOTE: another numpy version may change the random streams, and another zlib build inside
Pillow may change the PNG bytes (not the pixels). The manifest records both versions and the
checksums, so such a difference can be found.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PIL import __version__ as pillow_version

from rsitr_bench.data.dataset import SPLITS
from rsitr_bench.errors import DatasetError

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Raise this whenever the generated files change, so caches of older versions are not reused."""
DEMO_DIR_NAME = f"demo-v{GENERATOR_VERSION}"
DEMO_SEED = 20240611
SCENE_CLASSES = (
    "airport",
    "baseballfield",
    "beach",
    "farmland",
    "forest",
    "harbor",
    "intersection",
    "lake",
    "parking",
    "residential",
    "river",
    "storagetanks",
)
SPLIT_SIZES = {"train": 600, "val": 120, "test": 120}
"""Images per split. Each size must be a multiple of the number of scene classes."""
PRETRAINING_DIR_NAME = f"demo-pretraining-v{GENERATOR_VERSION}-6classes"
PRETRAINING_SEED = DEMO_SEED + 1
PRETRAINING_CLASSES = ("airport", "beach", "farmland", "harbor", "residential", "river")
PRETRAINING_SPLIT_SIZES = {"train": 1200, "val": 120, "test": 12}
"""The pretraining corpus's val split picks the best pretraining epoch; its test split is unused."""
CAPTIONS_PER_IMAGE = 5
IMAGE_SIZE = 64
IMAGE_DIR_NAME = "images"
MANIFEST_NAME = "manifest.json"
CACHE_ENV_VAR = "RSITR_CACHE_DIR"

# Scenes are drawn at twice the stored size and box-filtered down, which smooths the edges.
_CANVAS = 2 * IMAGE_SIZE
# A generation takes seconds, so ensure_demo deletes a temporary folder older than this as
# left over from an interrupted run.
_STALE_TEMP_AGE_S = 3600.0
_PNG_COMPRESS_LEVEL = 6

RGB = tuple[int, int, int]

_ROOF_COLORS: dict[str, RGB] = {
    "red": (170, 62, 50),
    "orange": (208, 122, 58),
    "gray": (128, 128, 134),
    "white": (226, 224, 218),
    "blue": (66, 102, 158),
    "brown": (118, 84, 58),
}
_CROP_COLORS: dict[str, RGB] = {
    "green": (78, 138, 58),
    "yellow": (200, 180, 92),
    "brown": (146, 108, 72),
    "light green": (146, 188, 98),
}
_WATER_COLORS: dict[str, RGB] = {
    "blue": (42, 86, 142),
    "dark blue": (26, 50, 92),
    "green": (56, 104, 88),
}
_SEA_COLORS: dict[str, RGB] = {
    "blue": (40, 96, 160),
    "dark blue": (24, 56, 110),
    "turquoise": (52, 150, 160),
}
_CAR_COLORS: dict[str, RGB] = {
    "white": (236, 236, 236),
    "black": (28, 28, 32),
    "red": (186, 40, 40),
    "blue": (40, 70, 176),
    "silver": (172, 174, 180),
    "yellow": (216, 186, 44),
}
_PLANE_COLORS: dict[str, RGB] = {"white": (236, 236, 240), "gray": (108, 110, 118)}
_TANK_COLORS: dict[str, RGB] = {"white": (232, 232, 228), "gray": (130, 132, 136)}
_SAND_COLORS: dict[str, RGB] = {"yellow": (222, 200, 140), "white": (238, 232, 212)}
_TREE_COLORS: dict[str, RGB] = {
    "dark green": (34, 74, 38),
    "green": (62, 112, 50),
    "yellow": (178, 160, 62),
}
_GRASS: RGB = (104, 140, 72)
_BARE_LAND: RGB = (168, 148, 112)
_CONCRETE: RGB = (156, 156, 150)
_ASPHALT: RGB = (86, 86, 90)
_DIRT: RGB = (150, 122, 86)
_FOREST_FLOOR: RGB = (44, 72, 40)


# ---------------------------------------------------------------------------------------------
# Scene description
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One drawing command on the canvas, in canvas pixels (twice the stored image size)."""

    kind: str
    """One of ``rect``, ``polygon``, ``ellipse``, ``line``, ``pieslice``, ``stripes``."""
    coords: tuple[float, ...]
    """Box ``(x0, y0, x1, y1)`` for rect, ellipse and pieslice, else flat ``x, y`` pairs."""
    fill: RGB
    width: int = 0
    """Line width of ``line`` shapes."""
    stripe: RGB | None = None
    """Second colour of a ``stripes`` polygon."""
    params: tuple[float, ...] = ()
    """Start and end angle in degrees for ``pieslice``. For ``stripes``, the stripe period in
    pixels and the orientation (0 horizontal, 1 vertical, 2 diagonal)."""


@dataclass
class Element:
    """A sampled scene part: its kind, how many items it has, their colour and region."""

    kind: str
    count: int = 1
    color: str | None = None
    region: str | None = None
    """One of ``REGIONS``, or None where the element spreads over the whole image."""
    attrs: dict[str, str] = field(default_factory=dict)
    shapes: list[Shape] = field(default_factory=list)


@dataclass
class Scene:
    """The sampled content of one image, from which both the image and its captions come."""

    label: str
    ground: RGB
    elements: list[Element]
    noise_seed: tuple[int, ...]
    attrs: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Element]:
        return [element for element in self.elements if element.kind == kind]

    def first(self, kind: str) -> Element | None:
        matches = self.of_kind(kind)
        return matches[0] if matches else None

    def require(self, kind: str) -> Element:
        """Return the first element of ``kind``, raising ValueError when there is none."""
        element = self.first(kind)
        if element is None:
            raise ValueError(f"{self.label} scene has no {kind} element")
        return element

    def kinds(self) -> list[str]:
        """Return the element kinds in the scene, sorted."""
        return sorted({element.kind for element in self.elements})


ELEMENT_KINDS = (
    "apron",
    "ball_field",
    "boat",
    "bridge",
    "building",
    "car",
    "clearing",
    "field",
    "lake",
    "parking_lot",
    "pier",
    "plane",
    "river",
    "road",
    "runway",
    "sand",
    "sea",
    "tank",
    "tree",
    "water",
)

REGIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "middle", "right")


def _region_name(row: str, column: str) -> str:
    if row == "middle" and column == "middle":
        return "center"
    if row == "middle":
        return column
    if column == "middle":
        return row
    return f"{row} {column}"


def _region_parts(region: str) -> tuple[str, str]:
    """Return the (row, column) of a region name."""
    if region == "center":
        return "middle", "middle"
    if region in ("left", "right"):
        return "middle", region
    if region in ("top", "bottom"):
        return region, "middle"
    row, column = region.split()
    return row, column


def region_at(x: float, y: float) -> str:
    """Return the region of the 3x3 grid that contains canvas point (x, y)."""
    row = _ROWS[min(2, max(0, int(3 * y / _CANVAS)))]
    column = _COLUMNS[min(2, max(0, int(3 * x / _CANVAS)))]
    return _region_name(row, column)


def _region_anchor(region: str, spread: float = 0.3) -> tuple[float, float]:
    """Return a point inside a region, ``spread`` of the canvas away from the center."""
    row, column = _region_parts(region)
    offset = {"top": -spread, "left": -spread, "middle": 0.0, "bottom": spread, "right": spread}
    return (0.5 + offset[column]) * _CANVAS, (0.5 + offset[row]) * _CANVAS


def _region_box(region: str, margin: float = 4.0) -> tuple[float, float, float, float]:
    """Return a box around a region, so that small objects placed in it have their center
    in that region or close to its border."""
    row, column = _region_parts(region)
    spans = {"top": (0.0, 0.42), "left": (0.0, 0.42), "middle": (0.29, 0.71)}
    spans.update({"bottom": (0.58, 1.0), "right": (0.58, 1.0)})
    x0, x1 = spans[column]
    y0, y1 = spans[row]
    return (
        x0 * _CANVAS + margin,
        y0 * _CANVAS + margin,
        x1 * _CANVAS - margin,
        y1 * _CANVAS - margin,
    )


def _opposite_region(region: str) -> str:
    row, column = _region_parts(region)
    flip = {"top": "bottom", "bottom": "top", "left": "right", "right": "left", "middle": "middle"}
    return _region_name(flip[row], flip[column])


@dataclass(frozen=True)
class _Frame:
    """A mirror or transpose of the canvas, so a layout sampled once serves four orientations.

    Samplers draw in the canonical frame and ``_Builder.add`` maps shapes and regions into the
    image: first ``swap`` exchanges x and y, then ``flip_x`` and ``flip_y`` mirror the axes.
    """

    swap: bool = False
    flip_x: bool = False
    flip_y: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.swap or self.flip_x or self.flip_y)

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.swap:
            x, y = y, x
        if self.flip_x:
            x = _CANVAS - x
        if self.flip_y:
            y = _CANVAS - y
        return x, y

    def box(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        if self.is_identity:
            return box[0], box[1], box[2], box[3]
        ax, ay = self.point(box[0], box[1])
        bx, by = self.point(box[2], box[3])
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def region(self, region: str) -> str:
        return region_at(*self.point(*_region_anchor(region)))

    def shape(self, shape: Shape) -> Shape:
        if self.is_identity:
            return shape
        if shape.kind in ("rect", "ellipse"):
            return Shape(shape.kind, self.box(shape.coords), shape.fill, shape.width)
        if shape.kind == "pieslice":
            raise ValueError("pieslice shapes cannot be mapped through a frame")
        points: list[float] = []
        for i in range(0, len(shape.coords), 2):
            points.extend(self.point(shape.coords[i], shape.coords[i + 1]))
        params = shape.params
        if shape.kind == "stripes" and self.swap and params[1] in (0, 1):
            params = (params[0], 1 - params[1])
        return Shape(shape.kind, tuple(points), shape.fill, shape.width, shape.stripe, params)


# ---------------------------------------------------------------------------------------------
# Shape helpers
# ---------------------------------------------------------------------------------------------


def _darker(rgb: RGB, factor: float = 0.7) -> RGB:
    return (int(rgb[0] * factor), int(rgb[1] * factor), int(rgb[2] * factor))


def _lighter(rgb: RGB, amount: float = 0.25) -> RGB:
    return tuple(int(c + (255 - c) * amount) for c in rgb)  # type: ignore[return-value]


def _rect(x0: float, y0: float, x1: float, y1: float, fill: RGB) -> Shape:
    return Shape("rect", (x0, y0, x1, y1), fill)


def _circle(x: float, y: float, radius: float, fill: RGB) -> Shape:
    return Shape("ellipse", (x - radius, y - radius, x + radius, y + radius), fill)


def _rotated(
    points: Sequence[tuple[float, float]], x: float, y: float, angle: float
) -> tuple[float, ...]:
    cos, sin = math.cos(angle), math.sin(angle)
    flat: list[float] = []
    for px, py in points:
        flat.extend((x + px * cos - py * sin, y + px * sin + py * cos))
    return tuple(flat)


def _tree_shapes(x: float, y: float, radius: float, color: RGB) -> list[Shape]:
    return [
        _circle(x + radius * 0.35, y + radius * 0.35, radius, _darker(color, 0.55)),
        _circle(x, y, radius, color),
        _circle(x - radius * 0.3, y - radius * 0.3, radius * 0.45, _lighter(color, 0.15)),
    ]


def _building_shapes(x0: float, y0: float, x1: float, y1: float, roof: RGB) -> list[Shape]:
    """Return a shadow, a roof and the darker half of a gabled roof along its long axis."""
    shapes = [_rect(x0 + 2, y0 + 2, x1 + 2, y1 + 2, (52, 52, 50)), _rect(x0, y0, x1, y1, roof)]
    if x1 - x0 >= y1 - y0:
        shapes.append(_rect(x0, (y0 + y1) / 2, x1, y1, _darker(roof, 0.8)))
    else:
        shapes.append(_rect((x0 + x1) / 2, y0, x1, y1, _darker(roof, 0.8)))
    return shapes


def _plane_shapes(x: float, y: float, length: float, angle: float, color: RGB) -> list[Shape]:
    """Return a plane with its nose toward ``angle``: fuselage, swept wings and tail."""
    half = length / 2
    fuselage = [
        (half, 0.0),
        (half - length * 0.12, -length * 0.07),
        (-half, -length * 0.05),
        (-half, length * 0.05),
        (half - length * 0.12, length * 0.07),
    ]
    wings = [
        (length * 0.14, 0.0),
        (-length * 0.12, -half),
        (-length * 0.26, -half),
        (-length * 0.08, 0.0),
        (-length * 0.26, half),
        (-length * 0.12, half),
    ]
    tail = [
        (-length * 0.36, 0.0),
        (-length * 0.46, -length * 0.2),
        (-length * 0.52, -length * 0.2),
        (-length * 0.46, 0.0),
        (-length * 0.52, length * 0.2),
        (-length * 0.46, length * 0.2),
    ]
    shadow = _darker(color, 0.3)
    shapes = []
    for outline in (fuselage, wings, tail):
        shapes.append(Shape("polygon", _rotated(outline, x + 2.5, y + 2.5, angle), shadow))
    for outline in (fuselage, wings, tail):
        shapes.append(Shape("polygon", _rotated(outline, x, y, angle), color))
    return shapes


def _boat_shapes(x: float, y: float, length: float, angle: float, color: RGB) -> list[Shape]:
    half, beam = length / 2, length * 0.32
    hull = [
        (half, 0.0),
        (half - beam, -beam / 2),
        (-half, -beam / 2),
        (-half, beam / 2),
        (half - beam, beam / 2),
    ]
    cabin = [
        (-length * 0.3, -beam * 0.25),
        (length * 0.05, -beam * 0.25),
        (length * 0.05, beam * 0.25),
        (-length * 0.3, beam * 0.25),
    ]
    return [
        Shape("polygon", _rotated(hull, x + 1.5, y + 1.5, angle), (20, 30, 45)),
        Shape("polygon", _rotated(hull, x, y, angle), color),
        Shape("polygon", _rotated(cabin, x, y, angle), (96, 120, 150)),
    ]


def _car_shapes(x: float, y: float, angle: float, color: RGB) -> list[Shape]:
    body = [(-3.6, -1.8), (3.6, -1.8), (3.6, 1.8), (-3.6, 1.8)]
    return [Shape("polygon", _rotated(body, x, y, angle), color)]


def _tank_shapes(x: float, y: float, radius: float, color: RGB) -> list[Shape]:
    return [
        _circle(x + radius * 0.25, y + radius * 0.25, radius, (58, 58, 56)),
        _circle(x, y, radius, color),
        _circle(x, y, radius * 0.7, _darker(color, 0.9)),
        _circle(x, y, radius * 0.15, _darker(color, 0.75)),
    ]


def _road_shapes(
    x0: float, y0: float, x1: float, y1: float, marking: RGB | None, horizontal: bool
) -> list[Shape]:
    """Return a straight asphalt road in box (x0, y0, x1, y1) with a dashed center line."""
    shapes = [_rect(x0, y0, x1, y1, _ASPHALT)]
    if marking is None:
        return shapes
    if horizontal:
        middle = (y0 + y1) / 2
        for x in np.arange(x0 + 2, x1, 10.0):
            shapes.append(
                _rect(float(x), middle - 0.7, min(float(x) + 5, x1), middle + 0.7, marking)
            )
    else:
        middle = (x0 + x1) / 2
        for y in np.arange(y0 + 2, y1, 10.0):
            shapes.append(
                _rect(middle - 0.7, float(y), middle + 0.7, min(float(y) + 5, y1), marking)
            )
    return shapes


def _blob(
    x: float, y: float, radius: float, aspect: float, phases: Sequence[float]
) -> tuple[float, ...]:
    """Return an irregular closed outline around (x, y), for lakes and clearings."""
    points: list[float] = []
    for i in range(32):
        theta = 2 * math.pi * i / 32
        scale = 1 + 0.12 * math.sin(2 * theta + phases[0]) + 0.08 * math.sin(3 * theta + phases[1])
        points.extend(
            (x + radius * scale * math.cos(theta) * aspect, y + radius * scale * math.sin(theta))
        )
    return tuple(points)


def _point_in_polygon(x: float, y: float, polygon: Sequence[float]) -> bool:
    inside = False
    count = len(polygon) // 2
    j = count - 1
    for i in range(count):
        xi, yi = polygon[2 * i], polygon[2 * i + 1]
        xj, yj = polygon[2 * j], polygon[2 * j + 1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


# ---------------------------------------------------------------------------------------------
# Scene sampling
# ---------------------------------------------------------------------------------------------


class _Builder:
    """Scene under construction: its elements, ground colour and the mask of taken pixels."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.frame = _Frame()
        self.ground: RGB = _GRASS
        self.elements: list[Element] = []
        self.attrs: dict[str, str] = {}
        self._occupied = Image.new("L", (_CANVAS, _CANVAS), 0)
        self._occupied_draw = ImageDraw.Draw(self._occupied)
        self._occupied_array: np.ndarray | None = None

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def integer(self, low: int, high: int) -> int:
        """Return a random integer in [low, high], both ends included."""
        return int(self.rng.integers(low, high + 1))

    def chance(self, probability: float) -> bool:
        return bool(self.rng.random() < probability)

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def jitter(self, rgb: RGB, amount: int = 8) -> RGB:
        """Return ``rgb`` with each channel moved by up to ``amount``."""
        red, green, blue = self.rng.integers(-amount, amount + 1, size=3).tolist()
        return (
            min(255, max(0, rgb[0] + red)),
            min(255, max(0, rgb[1] + green)),
            min(255, max(0, rgb[2] + blue)),
        )

    def add(
        self,
        kind: str,
        shapes: list[Shape],
        count: int = 1,
        color: str | None = None,
        region: str | None = None,
        occupy: bool = True,
        **attrs: str,
    ) -> Element:
        """Append an element, mapping its shapes and region from the canonical frame."""
        if kind not in ELEMENT_KINDS:
            raise ValueError(f"unknown element kind {kind!r}, expected one of {ELEMENT_KINDS}")
        mapped = [self.frame.shape(shape) for shape in shapes]
        if region is not None:
            region = self.frame.region(region)
        element = Element(kind, count, color, region, dict(attrs), mapped)
        self.elements.append(element)
        if occupy:
            self.occupy(mapped)
        return element

    def occupy(self, shapes: list[Shape]) -> None:
        """Mark the pixels under image-frame shapes as taken."""
        for shape in shapes:
            _draw_shape(self._occupied_draw, shape, 255)
        self._occupied_array = None

    def is_free(self, box: Sequence[float]) -> bool:
        """Return whether a canonical-frame box lies inside the canvas on untaken pixels."""
        x0, y0, x1, y1 = self.frame.box(box)
        if x0 < 0 or y0 < 0 or x1 > _CANVAS or y1 > _CANVAS:
            return False
        if self._occupied_array is None:
            self._occupied_array = np.asarray(self._occupied)
        window = self._occupied_array[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)]
        return not window.any()

    def scatter(
        self, box: Sequence[float], count: int, radius: float, reserve: bool = True
    ) -> list[tuple[float, float]]:
        """Return up to ``count`` free points in a canonical box, ``radius`` from taken pixels.

        With ``reserve`` each point takes a square of that radius, so points do not overlap.
        """
        points: list[tuple[float, float]] = []
        low = (box[0] + radius, box[1] + radius)
        high = (max(low[0], box[2] - radius), max(low[1], box[3] - radius))
        candidates = self.rng.uniform(low, high, size=(count * 12, 2)).tolist()
        for x, y in candidates:
            if len(points) == count:
                break
            square = (x - radius, y - radius, x + radius, y + radius)
            if not self.is_free(square):
                continue
            points.append((x, y))
            if reserve:
                self.occupy([_rect(*self.frame.box(square), (0, 0, 0))])
        return points

    def add_trees(
        self,
        box: Sequence[float],
        count: int,
        region: str | None,
        color_name: str = "green",
        reserve: bool = True,
        radius_range: tuple[float, float] = (3.5, 6.0),
        **attrs: str,
    ) -> Element | None:
        """Scatter up to ``count`` trees in a box and add them as one element, if any fit."""
        radius = self.uniform(*radius_range)
        points = self.scatter(box, count, radius + 1, reserve)
        if not points:
            return None
        shapes: list[Shape] = []
        for x, y in points:
            shapes.extend(_tree_shapes(x, y, radius, self.jitter(_TREE_COLORS[color_name], 10)))
        return self.add("tree", shapes, len(points), color_name, region, occupy=False, **attrs)

    def add_buildings(
        self,
        box: Sequence[float],
        count: int,
        region: str | None,
        roof: str,
        size_range: tuple[float, float] = (8.0, 15.0),
        **attrs: str,
    ) -> Element | None:
        """Place up to ``count`` non-overlapping buildings in a box, if any fit."""
        shapes: list[Shape] = []
        placed = 0
        for _ in range(count * 12):
            if placed == count:
                break
            width = self.uniform(*size_range)
            height = self.uniform(*size_range)
            x0 = self.uniform(box[0], max(box[0], box[2] - width))
            y0 = self.uniform(box[1], max(box[1], box[3] - height))
            footprint = (x0 - 2, y0 - 2, x0 + width + 4, y0 + height + 4)
            if not self.is_free(footprint):
                continue
            roof_rgb = self.jitter(_ROOF_COLORS[roof], 12)
            shapes.extend(_building_shapes(x0, y0, x0 + width, y0 + height, roof_rgb))
            self.occupy([_rect(*self.frame.box(footprint), (0, 0, 0))])
            placed += 1
        if not placed:
            return None
        return self.add("building", shapes, placed, roof, region, occupy=False, **attrs)

    def add_parking_lot(self, box: Sequence[float], region: str | None, occupancy: float) -> int:
        """Add a parking lot with rows of stalls, fill stalls with cars, return the car count."""
        x0, y0, x1, y1 = box
        shapes = [_rect(x0, y0, x1, y1, self.jitter(_ASPHALT, 6))]
        cars: list[Shape] = []
        stall_width, stall_depth = 6.0, 9.0
        y = y0 + 2
        row = 0
        while y + stall_depth <= y1 - 1:
            x = x0 + 2
            while x + stall_width <= x1 - 1:
                shapes.append(_rect(x, y, x + 0.8, y + stall_depth, (220, 220, 214)))
                if self.chance(occupancy):
                    color = _CAR_COLORS[self.pick(list(_CAR_COLORS))]
                    cars.extend(
                        _car_shapes(
                            x + stall_width / 2 + 0.4, y + stall_depth / 2, math.pi / 2, color
                        )
                    )
                x += stall_width
            # Rows pair up back to back, with a driving aisle after every second row.
            y += stall_depth if row % 2 == 0 else stall_depth + 6
            row += 1
        self.add("parking_lot", shapes, 1, "gray", region)
        if cars:
            self.add("car", cars, len(cars), None, region, occupy=False)
        return len(cars)


def _sample_airport(b: _Builder) -> None:
    apron_side = b.pick(["top", "bottom", "left", "right"])
    b.frame = {
        "top": _Frame(flip_x=b.chance(0.5)),
        "bottom": _Frame(flip_y=True, flip_x=b.chance(0.5)),
        "left": _Frame(swap=True, flip_y=b.chance(0.5)),
        "right": _Frame(swap=True, flip_x=True, flip_y=b.chance(0.5)),
    }[apron_side]
    grass = b.chance(0.6)
    b.ground = b.jitter(_GRASS if grass else _BARE_LAND)
    b.attrs["ground"] = "grass" if grass else "bare land"

    # Canonical layout: a horizontal runway in the bottom third, apron and planes above it.
    runway_y = b.uniform(0.69, 0.76) * _CANVAS
    half_width = b.uniform(6.0, 7.5)
    taxiway_y = runway_y - half_width - 9
    apron_x0, apron_x1 = b.uniform(2, 24), b.uniform(104, 126)
    apron = [
        _rect(apron_x0, 6, apron_x1, taxiway_y + 2, b.jitter(_CONCRETE, 6)),
        _rect(0, taxiway_y - 2, _CANVAS, taxiway_y + 2, b.jitter(_ASPHALT, 6)),
        _rect(apron_x0 + 10, taxiway_y, apron_x0 + 14, runway_y, _ASPHALT),
        _rect(apron_x1 - 14, taxiway_y, apron_x1 - 10, runway_y, _ASPHALT),
    ]
    b.add("apron", apron)
    runway = _road_shapes(
        0, runway_y - half_width, _CANVAS, runway_y + half_width, (236, 236, 236), True
    )
    orientation = "vertical" if apron_side in ("left", "right") else "horizontal"
    b.add("runway", runway, orientation=orientation, side=apron_side)

    count = b.integer(1, 5)
    length = b.uniform(16.0, 20.0)
    spacing = length + b.uniform(2.0, 6.0)
    row_width = count * spacing
    start = b.uniform(apron_x0 + 2, max(apron_x0 + 2, apron_x1 - 2 - row_width))
    # Planes stay below the terminal strip (y 8 to 17) even when they point along y.
    plane_y = b.uniform(30.0, taxiway_y - 14)
    color = b.pick(list(_PLANE_COLORS))
    nose = math.pi / 2 if b.chance(0.6) else -math.pi / 2
    planes: list[Shape] = []
    placed = 0
    for i in range(count):
        x = start + spacing * (i + 0.5)
        if x + length / 2 > apron_x1:
            break
        planes.extend(
            _plane_shapes(
                x, plane_y, length, nose + b.uniform(-0.15, 0.15), b.jitter(_PLANE_COLORS[color], 5)
            )
        )
        placed += 1
    planes_center = start + spacing * placed / 2
    b.add("plane", planes, placed, color, region_at(planes_center, plane_y), occupy=False)

    if b.chance(0.6):
        width = b.uniform(28.0, 56.0)
        x0 = b.uniform(apron_x0 + 2, apron_x1 - 2 - width)
        roof = b.pick(["white", "gray", "blue"])
        shapes = _building_shapes(x0, 8, x0 + width, 17, b.jitter(_ROOF_COLORS[roof], 8))
        b.add("building", shapes, 1, roof, region_at(x0 + width / 2, 12), role="terminal")


def _sample_harbor(b: _Builder) -> None:
    water_side = b.pick(["left", "right", "top", "bottom"])
    along = b.chance(0.5)
    b.frame = {
        "left": _Frame(flip_y=along),
        "right": _Frame(flip_x=True, flip_y=along),
        "top": _Frame(swap=True, flip_x=along),
        "bottom": _Frame(swap=True, flip_y=True, flip_x=along),
    }[water_side]
    concrete = b.chance(0.6)
    b.ground = b.jitter(_CONCRETE if concrete else _BARE_LAND)

    # Canonical layout: water on the left of a straight quay, land on the right.
    shore = b.uniform(0.45, 0.6) * _CANVAS
    water_color = b.pick(list(_WATER_COLORS))
    water = [
        _rect(0, 0, shore, _CANVAS, b.jitter(_WATER_COLORS[water_color], 6)),
        _rect(shore - 1, 0, shore + 2, _CANVAS, (200, 200, 196)),
    ]
    b.add("water", water, 1, water_color, "left", occupy=False)

    pier_count = b.integer(1, 3)
    gap = _CANVAS / (pier_count + 1)
    pier_shapes: list[Shape] = []
    boat_shapes: list[Shape] = []
    boat_color = b.pick(["white", "white", "blue"])
    boat_rgb = {"white": (238, 238, 236), "blue": (70, 110, 190)}[boat_color]
    boats = 0
    for i in range(pier_count):
        pier_y = gap * (i + 1) + b.uniform(-4, 4)
        pier_length = b.uniform(0.5, 0.8) * shore
        pier_shapes.append(
            _rect(shore - pier_length, pier_y - 2, shore, pier_y + 2, (188, 186, 180))
        )
        boat_length = b.uniform(9.0, 12.0)
        for side in (-1, 1):
            boat_y = pier_y + side * (2 + boat_length * 0.16 + 1.5)
            x = shore - 3 - boat_length / 2
            while x - boat_length / 2 > shore - pier_length and b.chance(0.7):
                angle = 0.0 if b.chance(0.5) else math.pi
                boat_shapes.extend(
                    _boat_shapes(x, boat_y, boat_length, angle, b.jitter(boat_rgb, 8))
                )
                boats += 1
                x -= boat_length + b.uniform(1.5, 4.0)
    if boats == 0:
        boat_length = 10.0
        x = shore - 3 - boat_length / 2
        pier_y = pier_shapes[0].coords[1] + 2
        boat_shapes.extend(_boat_shapes(x, pier_y - 5.2, boat_length, 0.0, boat_rgb))
        boats = 1
    b.add("pier", pier_shapes, pier_count, None, "left", occupy=False)
    b.add("boat", boat_shapes, boats, boat_color, "left", occupy=False)

    land_box = (shore + 6, 4, _CANVAS - 4, _CANVAS - 4)
    if b.chance(0.4):
        road_x = shore + b.uniform(8, 14)
        road = _road_shapes(road_x - 4, 0, road_x + 4, _CANVAS, None, False)
        b.add("road", road, 1, None, "right", orientation="along the shore")
        land_box = (road_x + 8, 4, _CANVAS - 4, _CANVAS - 4)
    roof = b.pick(list(_ROOF_COLORS))
    b.add_buildings(land_box, b.integer(2, 8), "right", roof, (10.0, 20.0))


def _sample_residential(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS if b.chance(0.7) else _BARE_LAND)
    dense = b.chance(0.5)
    b.attrs["density"] = "dense" if dense else "sparse"

    layout = b.pick(["horizontal", "vertical", "cross"])
    marking = (230, 230, 230) if b.chance(0.5) else None
    if layout in ("horizontal", "cross"):
        y = b.uniform(0.3, 0.7) * _CANVAS
        b.add(
            "road",
            _road_shapes(0, y - 4.5, _CANVAS, y + 4.5, marking, True),
            orientation="horizontal",
        )
    if layout in ("vertical", "cross"):
        x = b.uniform(0.3, 0.7) * _CANVAS
        b.add(
            "road",
            _road_shapes(x - 4.5, 0, x + 4.5, _CANVAS, marking, False),
            orientation="vertical",
        )

    mixed = b.chance(0.35)
    roofs = [b.pick(list(_ROOF_COLORS))]
    if mixed:
        roofs.append(b.pick([name for name in _ROOF_COLORS if name != roofs[0]]))
    size = (8.0, 12.0) if dense else (9.0, 14.0)
    total = b.integer(22, 34) if dense else b.integer(7, 12)
    shapes: list[Shape] = []
    placed = 0
    for _ in range(total * 15):
        if placed == total:
            break
        width, height = b.uniform(*size), b.uniform(*size)
        x0, y0 = b.uniform(2, _CANVAS - 2 - width), b.uniform(2, _CANVAS - 2 - height)
        footprint = (x0 - 2, y0 - 2, x0 + width + 3, y0 + height + 3)
        if not b.is_free(footprint):
            continue
        roof = roofs[placed % len(roofs)]
        shapes.extend(
            _building_shapes(x0, y0, x0 + width, y0 + height, b.jitter(_ROOF_COLORS[roof], 12))
        )
        b.occupy([_rect(*footprint, (0, 0, 0))])
        placed += 1
    color = roofs[0] if not mixed else f"{roofs[0]} and {roofs[1]}"
    b.add("building", shapes, placed, color, None, occupy=False, mixed=str(mixed).lower())

    tree_count = b.integer(2, 8) if dense else b.integer(10, 24)
    b.add_trees((0, 0, _CANVAS, _CANVAS), tree_count, None)


def _sample_forest(b: _Builder) -> None:
    dense = b.chance(0.6)
    b.attrs["density"] = "dense" if dense else "sparse"
    b.ground = b.jitter(_FOREST_FLOOR if dense else _GRASS)

    if b.chance(0.5):
        region = b.pick([r for r in REGIONS if r != "center"])
        x, y = _region_anchor(region, 0.28)
        meadow = b.chance(0.5)
        fill = (150, 184, 96) if meadow else _BARE_LAND
        outline = _blob(x, y, b.uniform(13, 19), b.uniform(0.8, 1.25), b.rng.uniform(0, 6, size=2))
        b.add(
            "clearing",
            [Shape("polygon", outline, b.jitter(fill, 8))],
            1,
            "light green" if meadow else "bare",
            region,
        )

    if b.chance(0.5):
        orientation = b.pick(["horizontal", "vertical"])
        position = b.uniform(0.3, 0.7) * _CANVAS
        wave = b.uniform(4, 10)
        points: list[float] = []
        for t in np.linspace(0, _CANVAS, 17):
            offset = position + wave * math.sin(float(t) / _CANVAS * math.pi * 2)
            points.extend((float(t), offset) if orientation == "horizontal" else (offset, float(t)))
        path = [Shape("line", tuple(points), b.jitter(_DIRT, 6), width=5)]
        b.add("road", path, 1, None, None, orientation=orientation, surface="dirt")

    mixed = b.chance(0.3)
    tone = b.pick(["dark green", "green"])
    count = b.integer(190, 240) if dense else b.integer(45, 80)
    radius = b.uniform(5.0, 7.0) if dense else b.uniform(4.0, 6.0)
    shapes: list[Shape] = []
    placed = 0
    margin = radius * 0.6
    for x, y in b.rng.uniform(0, _CANVAS, size=(count * 3, 2)).tolist():
        if placed == count:
            break
        square = (
            max(0, x - margin),
            max(0, y - margin),
            min(_CANVAS, x + margin),
            min(_CANVAS, y + margin),
        )
        if not b.is_free(square):
            continue
        name = "yellow" if mixed and b.chance(0.25) else tone
        shapes.extend(
            _tree_shapes(x, y, radius * b.uniform(0.8, 1.2), b.jitter(_TREE_COLORS[name], 10))
        )
        placed += 1
    b.add("tree", shapes, placed, tone, None, occupy=False, mixed=str(mixed).lower())


# River courses and the regions of their two banks. A falling river runs from the top left
# to the bottom right, a rising one from the bottom left to the top right.
_RIVER_BANKS = {
    "horizontal": ("top", "bottom"),
    "vertical": ("left", "right"),
    "falling": ("top right", "bottom left"),
    "rising": ("top left", "bottom right"),
}


def _sample_river(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS)
    course = b.pick(list(_RIVER_BANKS))
    winding = b.chance(0.5)
    wide = b.chance(0.5)
    width = b.uniform(16, 22) if wide else b.uniform(8, 11)
    color = b.pick(["blue", "dark blue", "green", "brown"])
    rgb = {**_WATER_COLORS, "brown": (122, 100, 70)}[color]

    if course == "horizontal":
        start, end = (
            (0.0, b.uniform(0.35, 0.65) * _CANVAS),
            (float(_CANVAS), b.uniform(0.35, 0.65) * _CANVAS),
        )
    elif course == "vertical":
        start, end = (
            (b.uniform(0.35, 0.65) * _CANVAS, 0.0),
            (b.uniform(0.35, 0.65) * _CANVAS, float(_CANVAS)),
        )
    elif course == "falling":
        start, end = (
            (0.0, b.uniform(0.0, 0.22) * _CANVAS),
            (float(_CANVAS), b.uniform(0.78, 1.0) * _CANVAS),
        )
    else:
        start, end = (
            (0.0, b.uniform(0.78, 1.0) * _CANVAS),
            (float(_CANVAS), b.uniform(0.0, 0.22) * _CANVAS),
        )
    # Overshoot the canvas so the river leaves the image at full width.
    dx, dy = end[0] - start[0], end[1] - start[1]
    norm = math.hypot(dx, dy)
    normal = (-dy / norm, dx / norm)
    amplitude = b.uniform(7, 13) if winding else b.uniform(0, 2)
    phase = b.uniform(0, math.pi)
    points: list[tuple[float, float]] = []
    for t in np.linspace(-0.08, 1.08, 30):
        t = float(t)
        bend = amplitude * math.sin(2 * math.pi * t + phase)
        points.append((start[0] + dx * t + normal[0] * bend, start[1] + dy * t + normal[1] * bend))
    flat = tuple(coordinate for point in points for coordinate in point)

    # The polygon of the first bank: the river line closed through the canvas corners on that side.
    if course == "vertical":
        first_corners = ((-20.0, _CANVAS + 20.0), (-20.0, -20.0))
    else:
        first_corners = ((_CANVAS + 20.0, -20.0), (-20.0, -20.0))
    if course == "vertical":
        second_corners = ((_CANVAS + 20.0, _CANVAS + 20.0), (_CANVAS + 20.0, -20.0))
    else:
        second_corners = ((_CANVAS + 20.0, _CANVAS + 20.0), (-20.0, _CANVAS + 20.0))
    first_polygon = flat + tuple(c for corner in first_corners for c in corner)
    second_polygon = flat + tuple(c for corner in second_corners for c in corner)
    bank_names = _RIVER_BANKS[course]

    def distance_to_river(x: float, y: float) -> float:
        return min(math.hypot(x - px, y - py) for px, py in points)

    for bank, polygon in zip(bank_names, (first_polygon, second_polygon), strict=True):
        cover = b.pick(["field", "field", "trees", "buildings", "grass"])
        if cover == "field":
            crop = b.pick(list(_CROP_COLORS))
            base = b.jitter(_CROP_COLORS[crop], 6)
            stripes = Shape(
                "stripes",
                polygon,
                base,
                0,
                _darker(base, 0.85),
                (b.uniform(4, 7), float(b.integer(0, 2))),
            )
            b.add("field", [stripes], 1, crop, bank, occupy=False, bank=bank)
            continue
        if cover == "grass":
            continue
        candidates = [(b.uniform(4, _CANVAS - 4), b.uniform(4, _CANVAS - 4)) for _ in range(160)]
        spots = [
            (x, y)
            for x, y in candidates
            if _point_in_polygon(x, y, polygon) and distance_to_river(x, y) > width / 2 + 9
        ]
        if cover == "trees":
            limit = b.integer(8, 30)
            shapes: list[Shape] = []
            for x, y in spots[:limit]:
                shapes.extend(
                    _tree_shapes(x, y, b.uniform(3.5, 5.5), b.jitter(_TREE_COLORS["green"], 10))
                )
            if spots:
                b.add(
                    "tree", shapes, min(limit, len(spots)), "green", bank, occupy=False, bank=bank
                )
        else:
            roof = b.pick(list(_ROOF_COLORS))
            shapes = []
            placed = 0
            for x, y in spots:
                if placed == 8:
                    break
                size = b.uniform(8, 12)
                footprint = (x - size / 2 - 2, y - size / 2 - 2, x + size / 2 + 3, y + size / 2 + 3)
                if not b.is_free(footprint):
                    continue
                shapes.extend(
                    _building_shapes(
                        x - size / 2,
                        y - size / 2,
                        x + size / 2,
                        y + size / 2,
                        b.jitter(_ROOF_COLORS[roof], 10),
                    )
                )
                b.occupy([_rect(*footprint, (0, 0, 0))])
                placed += 1
            if placed:
                b.add("building", shapes, placed, roof, bank, occupy=False, bank=bank)

    banks = [Shape("line", flat, (150, 140, 100), width=int(width + 4))]
    river = [*banks, Shape("line", flat, b.jitter(rgb, 6), width=int(width))]
    b.add(
        "river",
        river,
        1,
        color,
        None,
        course=course,
        winding=str(winding).lower(),
        wide=str(wide).lower(),
    )

    if b.chance(0.4):
        middle = points[len(points) // 2]
        angle = math.atan2(normal[1], normal[0])
        half_length, half_width = width / 2 + 7, 3.0
        deck = [
            (-half_length, -half_width),
            (half_length, -half_width),
            (half_length, half_width),
            (-half_length, half_width),
        ]
        bridge = [Shape("polygon", _rotated(deck, middle[0], middle[1], angle), (176, 172, 164))]
        b.add("bridge", bridge, 1, None, region_at(*middle), occupy=False)


def _sample_intersection(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS if b.chance(0.6) else _BARE_LAND)
    cx, cy = b.uniform(0.4, 0.6) * _CANVAS, b.uniform(0.4, 0.6) * _CANVAS
    half = b.uniform(6.0, 8.0)
    marking_name = b.pick(["white", "yellow"])
    marking = (236, 236, 236) if marking_name == "white" else (222, 196, 60)
    kind = b.pick(["cross", "cross", "t"])
    roads: list[Shape] = []
    segments: list[tuple[float, float, float, float, bool]] = []
    open_side = ""
    if kind == "cross":
        segments += [
            (0, cy - half, _CANVAS, cy + half, True),
            (cx - half, 0, cx + half, _CANVAS, False),
        ]
    else:
        open_side = b.pick(["top", "bottom", "left", "right"])
        if open_side in ("top", "bottom"):
            segments.append((0, cy - half, _CANVAS, cy + half, True))
            y0, y1 = (0.0, cy) if open_side == "top" else (cy, float(_CANVAS))
            segments.append((cx - half, y0, cx + half, y1, False))
        else:
            segments.append((cx - half, 0, cx + half, _CANVAS, False))
            x0, x1 = (0.0, cx) if open_side == "left" else (cx, float(_CANVAS))
            segments.append((x0, cy - half, x1, cy + half, True))
    for x0, y0, x1, y1, horizontal in segments:
        roads.extend(_road_shapes(x0, y0, x1, y1, marking, horizontal))
    roads.append(_rect(cx - half, cy - half, cx + half, cy + half, _ASPHALT))
    b.add(
        "road",
        roads,
        len(segments),
        marking_name,
        region_at(cx, cy),
        junction=kind,
        branch=open_side,
    )

    car_count = b.integer(0, 8)
    cars: list[Shape] = []
    placed = 0
    for _ in range(car_count * 10):
        if placed == car_count:
            break
        x0, y0, x1, y1, horizontal = segments[b.integer(0, len(segments) - 1)]
        lane = half / 2 * (1 if b.chance(0.5) else -1)
        if horizontal:
            x, y, angle = b.uniform(x0 + 4, x1 - 4), cy + lane, 0.0
        else:
            x, y, angle = cx + lane, b.uniform(y0 + 4, y1 - 4), math.pi / 2
        if abs(x - cx) < half + 2 and abs(y - cy) < half + 2:
            continue
        clash = any(math.hypot(x - px, y - py) < 9 for px, py in _centers(cars))
        if clash:
            continue
        cars.extend(_car_shapes(x, y, angle, _CAR_COLORS[b.pick(list(_CAR_COLORS))]))
        placed += 1
    if placed:
        b.add("car", cars, placed, None, None, occupy=False)

    quadrants = {
        "top left": (0.0, 0.0, cx - half, cy - half),
        "top right": (cx + half, 0.0, float(_CANVAS), cy - half),
        "bottom left": (0.0, cy + half, cx - half, float(_CANVAS)),
        "bottom right": (cx + half, cy + half, float(_CANVAS), float(_CANVAS)),
    }
    if open_side:
        # The side without a branch road is one strip instead of two quadrants.
        closed = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}[open_side]
        strips = {
            "bottom": (0.0, cy + half, float(_CANVAS), float(_CANVAS)),
            "top": (0.0, 0.0, float(_CANVAS), cy - half),
            "left": (0.0, 0.0, cx - half, float(_CANVAS)),
            "right": (cx + half, 0.0, float(_CANVAS), float(_CANVAS)),
        }
        quadrants = {name: box for name, box in quadrants.items() if closed not in name.split()}
        quadrants[closed] = strips[closed]
    for region, (x0, y0, x1, y1) in quadrants.items():
        box = (x0 + 3, y0 + 3, x1 - 3, y1 - 3)
        cover = b.pick(["buildings", "buildings", "trees", "grass"])
        if cover == "buildings":
            b.add_buildings(box, b.integer(1, 5), region, b.pick(list(_ROOF_COLORS)), (9.0, 16.0))
        elif cover == "trees":
            b.add_trees(box, b.integer(3, 10), region)


def _centers(shapes: list[Shape]) -> list[tuple[float, float]]:
    centers = []
    for shape in shapes:
        xs, ys = shape.coords[0::2], shape.coords[1::2]
        centers.append((sum(xs) / len(xs), sum(ys) / len(ys)))
    return centers


def _sample_parking(b: _Builder) -> None:
    building_side = b.pick(["left", "right", "top", "bottom"])
    b.frame = {
        "left": _Frame(flip_y=b.chance(0.5)),
        "right": _Frame(flip_x=True, flip_y=b.chance(0.5)),
        "top": _Frame(swap=True, flip_x=b.chance(0.5)),
        "bottom": _Frame(swap=True, flip_y=True, flip_x=b.chance(0.5)),
    }[building_side]
    b.ground = b.jitter(_CONCRETE if b.chance(0.5) else _GRASS)

    # Canonical layout: a building strip on the left, the parking lot to its right.
    has_building = b.chance(0.7)
    strip = b.uniform(30, 42) if has_building else b.uniform(8, 14)
    occupancy_name = b.pick(["full", "half", "empty"])
    occupancy = {
        "full": b.uniform(0.85, 0.97),
        "half": b.uniform(0.4, 0.6),
        "empty": b.uniform(0.08, 0.2),
    }
    lot = (strip + 4, b.uniform(4, 14), _CANVAS - b.uniform(4, 12), _CANVAS - b.uniform(4, 14))
    b.add_parking_lot(lot, None, occupancy[occupancy_name])
    b.attrs["occupancy"] = occupancy_name
    if has_building:
        roof = b.pick(["white", "gray", "blue", "red"])
        y0, y1 = b.uniform(6, 24), b.uniform(_CANVAS - 24, _CANVAS - 6)
        shapes = _building_shapes(4, y0, strip - 2, y1, b.jitter(_ROOF_COLORS[roof], 8))
        b.add("building", shapes, 1, roof, "left", size="large")
    else:
        b.add_trees((2, 4, strip, _CANVAS - 4), b.integer(4, 10), "left")


def _sample_beach(b: _Builder) -> None:
    sea_side = b.pick(["left", "right", "top", "bottom"])
    b.frame = {
        "left": _Frame(flip_y=b.chance(0.5)),
        "right": _Frame(flip_x=True, flip_y=b.chance(0.5)),
        "top": _Frame(swap=True, flip_x=b.chance(0.5)),
        "bottom": _Frame(swap=True, flip_y=True, flip_x=b.chance(0.5)),
    }[sea_side]
    b.ground = b.jitter(_GRASS)

    # Canonical layout: sea on the left, a sand strip along a wavy shore, land on the right.
    shore_x = b.uniform(0.32, 0.48) * _CANVAS
    amplitude, period, phase = b.uniform(2, 7), b.uniform(50, 120), b.uniform(0, 6.3)
    sand_width = b.uniform(12, 22)
    ys = np.linspace(-4, _CANVAS + 4, 25)
    shore = [
        (shore_x + amplitude * math.sin(2 * math.pi * float(y) / period + phase), float(y))
        for y in ys
    ]
    sand_name = b.pick(list(_SAND_COLORS))
    sand_edge = [(x + sand_width, y) for x, y in shore]
    sand = Shape(
        "polygon",
        tuple(c for p in shore + sand_edge[::-1] for c in p),
        b.jitter(_SAND_COLORS[sand_name], 6),
    )
    b.add("sand", [sand], 1, sand_name, None)

    sea_name = b.pick(list(_SEA_COLORS))
    sea_outline = [(-4.0, -4.0), *shore, (-4.0, _CANVAS + 4.0)]
    sea = Shape(
        "polygon", tuple(c for p in sea_outline for c in p), b.jitter(_SEA_COLORS[sea_name], 6)
    )
    waves = [
        Shape("line", tuple(c for x, y in shore for c in (x - offset, y)), (226, 236, 240), width=2)
        for offset in (1.5, b.uniform(5, 8))
    ]
    b.add("sea", [sea, *waves], 1, sea_name, "left", occupy=False)

    land_x = shore_x + amplitude + sand_width + 3
    land_box = (land_x, 2, _CANVAS - 2, _CANVAS - 2)
    cover = b.pick(["trees", "buildings", "road"])
    if cover == "road":
        road = _road_shapes(land_x + 2, 0, land_x + 11, _CANVAS, (236, 236, 236), False)
        b.add("road", road, 1, None, "right", orientation="along the beach")
        land_box = (land_x + 15, 2, _CANVAS - 2, _CANVAS - 2)
        cover = b.pick(["trees", "buildings"])
    if cover == "trees":
        b.add_trees(land_box, b.integer(8, 26), "right")
    else:
        b.add_buildings(land_box, b.integer(3, 9), "right", b.pick(list(_ROOF_COLORS)))

    boat_count = (0, 0, 1, 2, 3)[b.integer(0, 4)]
    shapes: list[Shape] = []
    placed = 0
    for x, y in b.scatter((2, 2, shore_x - 12, _CANVAS - 2), boat_count, 7):
        shapes.extend(
            _boat_shapes(x, y, b.uniform(8, 11), b.uniform(0, 2 * math.pi), (238, 238, 236))
        )
        placed += 1
    if placed:
        b.add("boat", shapes, placed, "white", "left", occupy=False)


def _sample_storagetanks(b: _Builder) -> None:
    b.ground = b.jitter(_CONCRETE if b.chance(0.6) else _BARE_LAND)
    rows, columns = b.integer(1, 3), b.integer(2, 4)
    large = b.chance(0.5)
    radius = b.uniform(9, 12) if large else b.uniform(5, 7)
    gap = b.uniform(3, 6)
    pitch = 2 * radius + gap
    group_width, group_height = columns * pitch, rows * pitch
    region = b.pick(list(REGIONS))
    ax, ay = _region_anchor(region, 0.25)
    x0 = min(max(4.0, ax - group_width / 2), _CANVAS - 4 - group_width)
    y0 = min(max(4.0, ay - group_height / 2), _CANVAS - 4 - group_height)
    color = b.pick(list(_TANK_COLORS))
    shapes: list[Shape] = []
    for row in range(rows):
        for column in range(columns):
            x = x0 + pitch * (column + 0.5)
            y = y0 + pitch * (row + 0.5)
            shapes.extend(_tank_shapes(x, y, radius, b.jitter(_TANK_COLORS[color], 5)))
    region = region_at(x0 + group_width / 2, y0 + group_height / 2)
    b.add(
        "tank",
        shapes,
        rows * columns,
        color,
        region,
        occupy=False,
        rows=str(rows),
        size="large" if large else "small",
    )
    b.occupy([_rect(x0 - 3, y0 - 3, x0 + group_width + 3, y0 + group_height + 3, (0, 0, 0))])

    if b.chance(0.5):
        horizontal = b.chance(0.5)
        for _ in range(8):
            position = b.uniform(10, _CANVAS - 10)
            box = (
                (0, position - 4, _CANVAS, position + 4)
                if horizontal
                else (position - 4, 0, position + 4, _CANVAS)
            )
            if b.is_free(box):
                road = _road_shapes(*box, None, horizontal)
                b.add(
                    "road",
                    road,
                    1,
                    None,
                    None,
                    orientation="horizontal" if horizontal else "vertical",
                )
                break
    if b.chance(0.7):
        building_region = (
            _opposite_region(region)
            if region != "center"
            else b.pick(["top", "bottom", "left", "right"])
        )
        roof = b.pick(["gray", "blue", "white", "red"])
        b.add_buildings(
            _region_box(building_region), b.integer(1, 4), building_region, roof, (12.0, 22.0)
        )


def _sample_baseballfield(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS if b.chance(0.7) else _BARE_LAND)
    two = b.chance(0.3)
    if two:
        halves = b.pick(["horizontal", "vertical"])
        regions = ["left", "right"] if halves == "horizontal" else ["top", "bottom"]
        radius = b.uniform(24, 28)
    else:
        regions = [b.pick(list(REGIONS))]
        radius = b.uniform(30, 40)
    infield_name = b.pick(["brown", "red"])
    infield_rgb = (178, 128, 84) if infield_name == "brown" else (176, 92, 64)
    shapes: list[Shape] = []
    actual_regions: list[str] = []
    for region in regions:
        # The outfield opens toward one image corner, so the field fits an R x R box.
        heading = b.pick(["-45", "45", "135", "225"])
        theta = math.radians(float(heading))
        ax, ay = _region_anchor(region, 0.25 if two else 0.22)
        box_x0 = min(max(3.0, ax - radius / 2), _CANVAS - 3 - radius)
        box_y0 = min(max(3.0, ay - radius / 2), _CANVAS - 3 - radius)
        hx = box_x0 if math.cos(theta) > 0 else box_x0 + radius
        hy = box_y0 if math.sin(theta) > 0 else box_y0 + radius
        fan = (hx - radius, hy - radius, hx + radius, hy + radius)
        start, end = float(heading) - 45, float(heading) + 45
        shapes.append(Shape("pieslice", fan, infield_rgb, params=(start, end)))
        inner = (hx - radius + 3.5, hy - radius + 3.5, hx + radius - 3.5, hy + radius - 3.5)
        shapes.append(Shape("pieslice", inner, b.jitter((136, 192, 88), 6), params=(start, end)))
        side = radius * 0.45
        diamond = [(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)]
        shapes.append(Shape("polygon", _rotated(diamond, hx, hy, theta - math.pi / 4), infield_rgb))
        inset = 3.0
        grass = [
            (inset, inset),
            (side - inset, inset),
            (side - inset, side - inset),
            (inset, side - inset),
        ]
        shapes.append(
            Shape("polygon", _rotated(grass, hx, hy, theta - math.pi / 4), (124, 178, 80))
        )
        for bx, by in ((side, 0.0), (side, side), (0.0, side)):
            base = _rotated([(bx, by)], hx, hy, theta - math.pi / 4)
            shapes.append(
                _rect(base[0] - 0.8, base[1] - 0.8, base[0] + 0.8, base[1] + 0.8, (245, 245, 245))
            )
        center_x = hx + math.cos(theta) * radius * 0.55
        center_y = hy + math.sin(theta) * radius * 0.55
        actual_regions.append(region_at(center_x, center_y))
        b.occupy(
            [
                _rect(
                    min(hx, hx + math.copysign(radius, math.cos(theta))) - 2,
                    min(hy, hy + math.copysign(radius, math.sin(theta))) - 2,
                    max(hx, hx + math.copysign(radius, math.cos(theta))) + 2,
                    max(hy, hy + math.copysign(radius, math.sin(theta))) + 2,
                    (0, 0, 0),
                )
            ]
        )
    region = actual_regions[0] if len(actual_regions) == 1 else None
    b.add(
        "ball_field",
        shapes,
        len(regions),
        infield_name,
        region,
        occupy=False,
        regions=" and ".join(actual_regions),
    )

    free = [r for r in REGIONS if r not in actual_regions and r != "center"]
    if b.chance(0.4):
        lot_region = b.pick(free)
        x0, y0, x1, y1 = _region_box(lot_region, 3)
        width, height = min(x1 - x0, 40.0), min(y1 - y0, 30.0)
        for _ in range(10):
            lx = b.uniform(x0, x1 - width)
            ly = b.uniform(y0, y1 - height)
            if b.is_free((lx, ly, lx + width, ly + height)):
                b.add_parking_lot(
                    (lx, ly, lx + width, ly + height),
                    region_at(lx + width / 2, ly + height / 2),
                    b.uniform(0.3, 0.9),
                )
                break
    if b.chance(0.4):
        building_region = b.pick(free)
        b.add_buildings(
            _region_box(building_region),
            b.integer(2, 5),
            building_region,
            b.pick(list(_ROOF_COLORS)),
        )
    b.add_trees((0, 0, _CANVAS, _CANVAS), b.integer(4, 30), None)


def _sample_lake(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS if b.chance(0.7) else _BARE_LAND)
    large = b.chance(0.5)
    region = b.pick(list(REGIONS))
    radius = b.uniform(26, 34) if large else b.uniform(13, 18)
    x, y = _region_anchor(region, 0.2 if large else 0.28)
    aspect = b.uniform(0.75, 1.3)
    color = b.pick(list(_WATER_COLORS))
    phases = b.rng.uniform(0, 6.3, size=2)
    shore = Shape("polygon", _blob(x, y, radius + 2.5, aspect, phases), (160, 150, 110))
    water = Shape("polygon", _blob(x, y, radius, aspect, phases), b.jitter(_WATER_COLORS[color], 6))
    region = region_at(x, y)
    b.add("lake", [shore, water], 1, color, region, size="large" if large else "small")

    if b.chance(0.4):
        far = (
            _opposite_region(region)
            if region != "center"
            else b.pick(["top", "bottom", "left", "right"])
        )
        row, column = _region_parts(far)
        # A large lake can reach the far edge, and then the scene has no road.
        if row != "middle" and (column == "middle" or b.chance(0.5)):
            road_y = 10.0 if row == "top" else _CANVAS - 10.0
            box = (0.0, road_y - 4, float(_CANVAS), road_y + 4)
            if b.is_free(box):
                road = _road_shapes(*box, None, True)
                b.add("road", road, 1, None, row, orientation="horizontal")
        else:
            road_x = 10.0 if column == "left" else _CANVAS - 10.0
            box = (road_x - 4, 0.0, road_x + 4, float(_CANVAS))
            if b.is_free(box):
                road = _road_shapes(*box, None, False)
                b.add("road", road, 1, None, column, orientation="vertical")

    if b.chance(0.35):
        field_region = b.pick([r for r in REGIONS if r != region and r != "center" and " " in r])
        fx0, fy0, fx1, fy1 = _region_box(field_region, 2)
        if b.is_free((fx0, fy0, fx1 - 12, fy1 - 12)):
            crop = b.pick(list(_CROP_COLORS))
            base = b.jitter(_CROP_COLORS[crop], 6)
            outline = (fx0, fy0, fx1 - 12, fy0, fx1 - 12, fy1 - 12, fx0, fy1 - 12)
            stripes = Shape(
                "stripes",
                outline,
                base,
                0,
                _darker(base, 0.85),
                (b.uniform(4, 7), float(b.integer(0, 1))),
            )
            b.add(
                "field", [stripes], 1, crop, region_at((fx0 + fx1 - 12) / 2, (fy0 + fy1 - 12) / 2)
            )

    if large and b.chance(0.35):
        boats: list[Shape] = []
        count = b.integer(1, 2)
        for i in range(count):
            bx = x + (i - (count - 1) / 2) * radius * 0.5
            boats.extend(
                _boat_shapes(bx, y + b.uniform(-4, 4), 7.5, b.uniform(0, math.pi), (238, 238, 236))
            )
        b.add("boat", boats, count, "white", region, occupy=False)

    if b.chance(0.3):
        building_region = b.pick([r for r in REGIONS if r != region])
        b.add_buildings(
            _region_box(building_region),
            b.integer(2, 5),
            building_region,
            b.pick(list(_ROOF_COLORS)),
        )

    # Trees around the shore: points on a ring just outside the lake.
    tree_count = b.integer(0, 26)
    tree_radius = b.uniform(3.5, 5.0)
    trees: list[Shape] = []
    placed = 0
    for _ in range(tree_count * 4):
        if placed == tree_count:
            break
        theta = b.uniform(0, 2 * math.pi)
        distance = radius * 1.2 + tree_radius + b.uniform(3, 10)
        tx = x + math.cos(theta) * distance * aspect
        ty = y + math.sin(theta) * distance
        margin = tree_radius + 1
        if not b.is_free((tx - margin, ty - margin, tx + margin, ty + margin)):
            continue
        trees.extend(_tree_shapes(tx, ty, tree_radius, b.jitter(_TREE_COLORS["green"], 10)))
        b.occupy([_rect(tx - margin, ty - margin, tx + margin, ty + margin, (0, 0, 0))])
        placed += 1
    if placed:
        b.add("tree", trees, placed, "green", None, occupy=False, around="lake")


def _sample_farmland(b: _Builder) -> None:
    b.ground = b.jitter(_GRASS)
    layout = b.pick(["halves", "thirds", "quarters"])
    cut_x, cut_y = b.uniform(0.35, 0.65) * _CANVAS, b.uniform(0.35, 0.65) * _CANVAS
    vertical_cuts = b.chance(0.5)
    parcels: list[tuple[str, tuple[float, float, float, float]]] = []
    full = float(_CANVAS)
    if layout == "halves" and vertical_cuts:
        parcels = [("left", (0, 0, cut_x, full)), ("right", (cut_x, 0, full, full))]
    elif layout == "halves":
        parcels = [("top", (0, 0, full, cut_y)), ("bottom", (0, cut_y, full, full))]
    elif layout == "thirds" and vertical_cuts:
        a, c = b.uniform(0.28, 0.38) * full, b.uniform(0.62, 0.72) * full
        parcels = [
            ("left", (0, 0, a, full)),
            ("center", (a, 0, c, full)),
            ("right", (c, 0, full, full)),
        ]
    elif layout == "thirds":
        a, c = b.uniform(0.28, 0.38) * full, b.uniform(0.62, 0.72) * full
        parcels = [
            ("top", (0, 0, full, a)),
            ("center", (0, a, full, c)),
            ("bottom", (0, c, full, full)),
        ]
    else:
        parcels = [
            ("top left", (0, 0, cut_x, cut_y)),
            ("top right", (cut_x, 0, full, cut_y)),
            ("bottom left", (0, cut_y, cut_x, full)),
            ("bottom right", (cut_x, cut_y, full, full)),
        ]

    previous = ""
    for region, (x0, y0, x1, y1) in parcels:
        crop = b.pick([name for name in _CROP_COLORS if name != previous])
        previous = crop
        base = b.jitter(_CROP_COLORS[crop], 8)
        stripe_orientation = b.integer(0, 2)
        outline = (x0 + 1, y0 + 1, x1 - 1, y0 + 1, x1 - 1, y1 - 1, x0 + 1, y1 - 1)
        stripes = Shape(
            "stripes",
            outline,
            base,
            0,
            _darker(base, 0.84),
            (b.uniform(3.5, 7), float(stripe_orientation)),
        )
        orientation = ("horizontal", "vertical", "diagonal")[stripe_orientation]
        b.add("field", [stripes], 1, crop, region, occupy=False, stripes=orientation)

    if b.chance(0.5):
        if layout == "quarters" or vertical_cuts:
            x = parcels[1][1][0]
            road = _road_shapes(x - 3.5, 0, x + 3.5, _CANVAS, None, False)
            b.add("road", road, 1, None, None, orientation="vertical")
        else:
            y = parcels[1][1][1]
            road = _road_shapes(0, y - 3.5, _CANVAS, y + 3.5, None, True)
            b.add("road", road, 1, None, None, orientation="horizontal")

    if b.chance(0.4):
        corner = b.pick(["top left", "top right", "bottom left", "bottom right"])
        x0, y0, x1, y1 = _region_box(corner, 3)
        box = (x0, y0, x0 + 28, y0 + 28) if "left" in corner else (x1 - 28, y0, x1, y0 + 28)
        if "bottom" in corner:
            box = (box[0], y1 - 28, box[2], y1)
        b.add_buildings(
            box, b.integer(1, 3), corner, b.pick(["red", "gray", "white", "blue"]), (7.0, 11.0)
        )

    if b.chance(0.4):
        edge = b.pick(["top", "bottom", "left", "right"])
        box = {
            "top": (0, 0, _CANVAS, 10),
            "bottom": (0, _CANVAS - 10, _CANVAS, _CANVAS),
            "left": (0, 0, 10, _CANVAS),
            "right": (_CANVAS - 10, 0, _CANVAS, _CANVAS),
        }[edge]
        b.add_trees(box, b.integer(6, 14), edge, "dark green", radius_range=(3.5, 4.5))


_SAMPLERS: dict[str, Callable[[_Builder], None]] = {
    "airport": _sample_airport,
    "baseballfield": _sample_baseballfield,
    "beach": _sample_beach,
    "farmland": _sample_farmland,
    "forest": _sample_forest,
    "harbor": _sample_harbor,
    "intersection": _sample_intersection,
    "lake": _sample_lake,
    "parking": _sample_parking,
    "residential": _sample_residential,
    "river": _sample_river,
    "storagetanks": _sample_storagetanks,
}


def sample_scene(label: str, rng: np.random.Generator, noise_seed: tuple[int, ...] = (0,)) -> Scene:
    """Sample the content of one image of scene class ``label``.

    ``noise_seed`` seeds only the texture noise and lighting that ``render_scene`` adds.
    """
    builder = _Builder(rng)
    _SAMPLERS[label](builder)
    return Scene(label, builder.ground, builder.elements, noise_seed, builder.attrs)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, fill: RGB | int) -> None:
    """Draw a shape in one colour. A ``stripes`` shape draws as its filled outline."""
    if shape.kind == "rect":
        draw.rectangle(shape.coords, fill=fill)
    elif shape.kind == "ellipse":
        draw.ellipse(shape.coords, fill=fill)
    elif shape.kind in ("polygon", "stripes"):
        draw.polygon(shape.coords, fill=fill)
    elif shape.kind == "line":
        draw.line(shape.coords, fill=fill, width=shape.width, joint="curve")
    elif shape.kind == "pieslice":
        draw.pieslice(shape.coords, shape.params[0], shape.params[1], fill=fill)
    else:
        raise ValueError(f"unknown shape kind {shape.kind!r}")


def _paste_stripes(image: Image.Image, shape: Shape) -> None:
    """Fill a polygon with alternating stripes of its two colours, like rows of a crop."""
    size = image.size[0]
    layer = Image.new("RGB", image.size, shape.fill)
    draw = ImageDraw.Draw(layer)
    period, orientation = shape.params
    stripe = shape.stripe or _darker(shape.fill)
    for start in np.arange(-size, size, period):
        offset = float(start)
        end = offset + period / 2
        if orientation == 0:
            draw.rectangle((0, offset, size, end), fill=stripe)
        elif orientation == 1:
            draw.rectangle((offset, 0, end, size), fill=stripe)
        else:
            draw.polygon((offset, 0, end, 0, end + size, size, offset + size, size), fill=stripe)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(shape.coords, fill=255)
    image.paste(layer, (0, 0), mask)


def render_scene(scene: Scene) -> Image.Image:
    """Draw a scene, add lighting and texture noise, and return the 64x64 RGB image."""
    image = Image.new("RGB", (_CANVAS, _CANVAS), scene.ground)
    draw = ImageDraw.Draw(image)
    for element in scene.elements:
        for shape in element.shapes:
            if shape.kind == "stripes":
                _paste_stripes(image, shape)
            else:
                _draw_shape(draw, shape, shape.fill)

    small = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32)

    rng = np.random.default_rng(list(scene.noise_seed))
    brightness = float(rng.uniform(0.86, 1.12))
    color_cast = rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    # A linear brightness ramp in a random direction imitates uneven sun and haze.
    angle = float(rng.uniform(0, 2 * math.pi))
    strength = float(rng.uniform(0.0, 0.16))
    ramp = np.linspace(-0.5, 0.5, IMAGE_SIZE, dtype=np.float32)
    gradient = 1 + strength * (math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None])
    coarse = rng.normal(0.0, 1.0, size=(6, 6)).astype(np.float32)
    size = (IMAGE_SIZE, IMAGE_SIZE)
    blotches = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC))
    grain = rng.normal(0.0, rng.uniform(2.0, 4.5), size=pixels.shape).astype(np.float32)
    pixels = pixels * (brightness * color_cast) * gradient[:, :, None]
    pixels += blotches[:, :, None] * float(rng.uniform(3.0, 8.0)) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------

_NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)
_WHERE = {
    "center": ("in the center", "in the middle", "in the middle of the image"),
    "top": ("at the top", "in the upper part", "at the top of the image"),
    "bottom": ("at the bottom", "in the lower part", "at the bottom of the image"),
    "left": ("on the left", "on the left side", "in the left part"),
    "right": ("on the right", "on the right side", "in the right part"),
    "top left": ("in the top left corner", "at the top left", "in the upper left"),
    "top right": ("in the top right corner", "at the top right", "in the upper right"),
    "bottom left": ("in the bottom left corner", "at the bottom left", "in the lower left"),
    "bottom right": ("in the bottom right corner", "at the bottom right", "in the lower right"),
}
# Adverbs for "X crosses Y ...", where "across the image" would repeat the verb.
_CROSSINGS = {
    "horizontal": ("from left to right", "horizontally"),
    "vertical": ("from top to bottom", "vertically"),
}
_COURSES = {
    "horizontal": (
        "from left to right",
        "horizontally across the image",
        "from the left to the right",
    ),
    "vertical": ("from top to bottom", "vertically across the image", "from the top to the bottom"),
    "falling": (
        "from the top left to the bottom right",
        "diagonally from the top left to the bottom right",
    ),
    "rising": ("from the bottom left to the top right", "from the top right to the bottom left"),
}

_Phrase = Callable[[np.random.Generator], str]


@dataclass(frozen=True)
class _Fact:
    """One true statement about a scene, worded anew on each call of ``write``."""

    write: _Phrase
    clause: bool = True
    """False for a bare noun phrase, which makes a whole caption but cannot join another."""


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _count(rng: np.random.Generator, n: int) -> str:
    """Return a count word that is true for ``n`` items, such as "two", "several" or "many"."""
    if n < 1:
        raise ValueError(f"cannot write a count word for {n} items")
    options: list[str] = []
    if n == 1:
        options += ["a", "one"]
    elif n < len(_NUMBER_WORDS):
        options.append(_NUMBER_WORDS[n])
    if 2 <= n <= 4:
        options.append("a few")
    if 3 <= n <= 7:
        options.append("several")
    if n >= 2:
        options.append("some")
    if n >= 7:
        options += ["many", "lots of"]
    return _pick(rng, options)


def _plural(n: int, noun: str) -> str:
    return noun if n == 1 else f"{noun}s"


def _be(n: int) -> str:
    return "is" if n == 1 else "are"


def _where(rng: np.random.Generator, region: str | None) -> str:
    return "" if region is None else _pick(rng, _WHERE[region])


def _roofed(color: str) -> str:
    """Return "red-roofed", or "red-roofed and white-roofed" for the colour "red and white"."""
    if " and " in color:
        first, second = color.split(" and ")
        return f"{first}-roofed and {second}-roofed"
    return f"{color}-roofed"


def _buildings_fact(
    element: Element, place: str = "", nouns: Sequence[str] = ("building", "house")
) -> _Fact:
    """Describe a group of buildings by count, roof colour and region (or ``place``)."""
    n, color = element.count, element.color or "gray"

    def write(rng: np.random.Generator) -> str:
        where = place or _where(rng, element.region)
        noun = _plural(n, _pick(rng, nouns))
        roofs = f"a {color} roof" if n == 1 else f"{color} roofs"
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {noun} with {roofs} {_be(n)} {where}",
                f"{_count(rng, n)} {_roofed(color)} {noun} {_be(n)} {where}",
                f"there {_be(n)} {_count(rng, n)} {color} {noun} {where}",
            ],
        )

    return _Fact(write)


def _trees_fact(element: Element, place: str = "") -> _Fact:
    n, color = element.count, element.color or "green"

    def write(rng: np.random.Generator) -> str:
        where = place or _where(rng, element.region)
        noun = _plural(n, "tree")
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {color} {noun} {_be(n)} {where}",
                f"there {_be(n)} {_count(rng, n)} {noun} {where}",
                f"{_count(rng, n)} {noun} {'grows' if n == 1 else 'grow'} {where}",
            ],
        )

    return _Fact(write)


def _cars_fact(element: Element, place: str) -> _Fact:
    n = element.count

    def write(rng: np.random.Generator) -> str:
        noun = _plural(n, _pick(rng, ["car", "vehicle"]))
        return f"{_count(rng, n)} {noun} {_be(n)} {place}"

    return _Fact(write)


def _facts_airport(scene: Scene) -> list[_Fact]:
    runway, planes = scene.require("runway"), scene.require("plane")
    terminal = scene.first("building")
    n, color = planes.count, planes.color
    side = runway.attrs["side"]
    beside = {
        "top": "above the runway",
        "bottom": "below the runway",
        "left": "on the left of the runway",
        "right": "on the right of the runway",
    }[side]
    runway_region = _opposite_region(side)
    course = "horizontal" if runway.attrs["orientation"] == "horizontal" else "vertical"
    ground = "green grass" if scene.attrs["ground"] == "grass" else "bare land"

    def overview(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                "an airport with a long runway",
                f"an airport with {_count(rng, n)} {color} {_plural(n, 'plane')}",
                f"an airport surrounded by {ground}",
            ],
        )

    def plane_fact(rng: np.random.Generator) -> str:
        noun = _plural(n, _pick(rng, ["plane", "airplane"]))
        where = _where(rng, planes.region)
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {color} {noun} {_be(n)} parked near the runway {where}",
                f"{_count(rng, n)} {color} {noun} {_be(n)} parked {beside}",
                f"there {_be(n)} {_count(rng, n)} {color} {noun} {where}",
                f"{_count(rng, n)} {noun} {_be(n)} parked on the apron {beside}",
            ],
        )

    def runway_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                f"a long runway runs {_pick(rng, _COURSES[course])}",
                f"a straight runway lies {_where(rng, runway_region)}",
                f"the runway crosses the image {_pick(rng, _COURSES[course][0::2])}",
            ],
        )

    def ground_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng, [f"the airport is surrounded by {ground}", f"{ground} lies around the runway"]
        )

    facts = [
        _Fact(overview, clause=False),
        _Fact(plane_fact),
        _Fact(runway_fact),
        _Fact(ground_fact),
    ]
    if terminal is not None:
        roof = terminal.color

        def terminal_fact(rng: np.random.Generator) -> str:
            where = _where(rng, terminal.region)
            return _pick(
                rng,
                [
                    f"a terminal building with a {roof} roof is {where}",
                    f"a long {roof} terminal building stands {where}",
                    f"a {_roofed(roof or 'gray')} terminal is {beside}",
                ],
            )

        facts.append(_Fact(terminal_fact))
    return facts


def _facts_harbor(scene: Scene) -> list[_Fact]:
    water, boats, piers = scene.require("water"), scene.require("boat"), scene.require("pier")
    buildings, road = scene.first("building"), scene.first("road")
    n, p = boats.count, piers.count

    def overview(rng: np.random.Generator) -> str:
        name = _pick(rng, ["harbor", "port"])
        boat_group = f"{_count(rng, n)} {_plural(n, 'boat')}"
        pier_group = f"{_count(rng, p)} {_plural(p, 'pier')}"
        return _pick(
            rng, [f"a {name} with {boat_group}", f"a {name} with {pier_group} and {boat_group}"]
        )

    def boat_fact(rng: np.random.Generator) -> str:
        noun = _plural(n, _pick(rng, ["boat", "ship"]))
        pier = _plural(p, "pier")
        where = _where(rng, water.region)
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {boats.color} {noun} {_be(n)} docked at the {pier}",
                f"{_count(rng, n)} {noun} {_be(n)} moored in the harbor",
                f"{_count(rng, n)} {boats.color} {noun} {_be(n)} parked along the {pier} {where}",
            ],
        )

    def pier_fact(rng: np.random.Generator) -> str:
        piers = f"{_count(rng, p)} {_plural(p, 'pier')} {'extends' if p == 1 else 'extend'}"
        return _pick(
            rng,
            [
                f"{piers} into the {water.color} water",
                f"{piers} into the harbor {_where(rng, water.region)}",
            ],
        )

    def water_fact(rng: np.random.Generator) -> str:
        water_where = _where(rng, water.region)
        options = [f"the {water.color} water is {water_where}"]
        if buildings is not None:
            buildings_where = _where(rng, buildings.region)
            options.append(f"the water is {water_where} and the buildings are {buildings_where}")
        return _pick(rng, options)

    facts = [_Fact(overview, clause=False), _Fact(boat_fact), _Fact(pier_fact), _Fact(water_fact)]
    if buildings is not None:
        facts.append(_buildings_fact(buildings))
    if road is not None:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng, ["a road runs along the shore", "a straight road runs beside the quay"]
                )
            )
        )
    return facts


def _road_course_fact(roads: list[Element], area: str) -> _Fact:
    """Describe one straight road by its course, or two crossing roads."""

    def write(rng: np.random.Generator) -> str:
        if len(roads) > 1:
            return _pick(
                rng,
                [
                    f"two roads cross in the {area}",
                    "a horizontal road and a vertical road cross each other",
                    f"two straight roads divide the {area} into four parts",
                ],
            )
        orientation = roads[0].attrs["orientation"]
        return _pick(
            rng,
            [
                f"a road crosses the {area} {_pick(rng, _CROSSINGS[orientation])}",
                f"a straight road runs {_pick(rng, _COURSES[orientation])}",
            ],
        )

    return _Fact(write)


def _facts_residential(scene: Scene) -> list[_Fact]:
    buildings, trees = scene.require("building"), scene.first("tree")
    roads = scene.of_kind("road")
    dense = scene.attrs["density"] == "dense"
    n, color = buildings.count, buildings.color or "gray"

    def overview(rng: np.random.Generator) -> str:
        density = "dense" if dense else _pick(rng, ["sparse", "quiet"])
        return _pick(
            rng,
            [
                f"a {density} residential area",
                f"a {density} residential area with {_roofed(color)} houses",
            ],
        )

    def building_fact(rng: np.random.Generator) -> str:
        noun = _plural(n, _pick(rng, ["building", "house"]))
        if dense:
            return _pick(
                rng,
                [
                    f"{_count(rng, n)} {_roofed(color)} {noun} {_be(n)} densely arranged",
                    f"{_count(rng, n)} {noun} with {color} roofs {_be(n)} close together",
                    f"{_count(rng, n)} {noun} {_be(n)} arranged neatly",
                ],
            )
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {_roofed(color)} {noun} {_be(n)} sparsely scattered",
                f"{_count(rng, n)} {noun} with {color} roofs {_be(n)} spread out",
                f"{_count(rng, n)} {noun} {_be(n)} far apart",
            ],
        )

    facts = [
        _Fact(overview, clause=False),
        _Fact(building_fact),
        _road_course_fact(roads, "residential area"),
    ]
    if trees is not None:
        facts.append(_trees_fact(trees, "among the houses"))
    return facts


def _facts_forest(scene: Scene) -> list[_Fact]:
    trees = scene.require("tree")
    clearing, path = scene.first("clearing"), scene.first("road")
    dense = scene.attrs["density"] == "dense"
    tone = trees.color or "green"
    mixed = trees.attrs.get("mixed") == "true"

    def overview(rng: np.random.Generator) -> str:
        density = "dense" if dense else "sparse"
        options = [f"a {density} forest", f"a {density} forest of {tone} trees"]
        if path is not None:
            options.append(f"a {density} forest with a narrow path")
        return _pick(rng, options)

    def tree_fact(rng: np.random.Generator) -> str:
        if dense:
            return _pick(
                rng,
                [
                    f"many {tone} trees cover the whole image",
                    f"the forest is full of {tone} trees",
                    f"lots of {tone} trees grow densely",
                ],
            )
        return _pick(
            rng,
            [
                f"many {tone} trees are scattered on the grass",
                "the trees grow sparsely on the green grassland",
                f"some {tone} trees stand apart on the grass",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(tree_fact)]
    if mixed:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        f"some yellow trees are mixed with the {tone} trees",
                        "a few trees have yellow leaves",
                    ],
                )
            )
        )
    if clearing is not None:
        bare = clearing.color == "bare"

        def clearing_fact(rng: np.random.Generator) -> str:
            where = _where(rng, clearing.region)
            name = "bare clearing" if bare else "light green meadow"
            return _pick(
                rng,
                [
                    f"there is a {name} {where}",
                    f"a small {'bare' if bare else 'grassy'} open area is {where}",
                    f"{where} the trees give way to a {name}",
                ],
            )

        facts.append(_Fact(clearing_fact))
    if path is not None:
        course = _CROSSINGS[path.attrs["orientation"]]

        def path_fact(rng: np.random.Generator) -> str:
            noun = _pick(rng, ["a narrow path", "a winding dirt road", "a brown trail"])
            return f"{noun} crosses the forest {_pick(rng, course)}"

        facts.append(_Fact(path_fact))
    return facts


def _facts_river(scene: Scene) -> list[_Fact]:
    river = scene.require("river")
    bridge = scene.first("bridge")
    course = _COURSES[river.attrs["course"]]
    winding = river.attrs["winding"] == "true"
    wide = river.attrs["wide"] == "true"
    color = river.color
    banks = [element for element in scene.elements if "bank" in element.attrs]
    fields = [element for element in banks if element.kind == "field"]

    def overview(rng: np.random.Generator) -> str:
        shape = "winding" if winding else "straight"
        return _pick(
            rng,
            [
                f"a {shape} {color} river",
                f"a {'wide' if wide else 'narrow'} river {_pick(rng, course)}",
            ],
        )

    def river_fact(rng: np.random.Generator) -> str:
        shape = "winding" if winding else "straight"
        width = "wide" if wide else "narrow"
        options = [
            f"a {shape} {color} river runs {_pick(rng, course)}",
            f"a {width} river flows {_pick(rng, course)}",
        ]
        if fields:
            options.append(f"a river runs {_pick(rng, course)} next to a {fields[0].color} field")
        return _pick(rng, options)

    facts = [_Fact(overview, clause=False), _Fact(river_fact)]
    for element in banks:
        bank = element.attrs["bank"]
        if element.kind == "field":
            crop = element.color
            facts.append(
                _Fact(
                    lambda rng, crop=crop, bank=bank: _pick(
                        rng,
                        [
                            f"a {crop} field is on the {bank} side of the river",
                            f"crops grow in a {crop} field on the {bank} bank",
                        ],
                    )
                )
            )
        elif element.kind == "tree":
            facts.append(_trees_fact(element, f"on the {bank} bank of the river"))
        elif element.kind == "building":
            facts.append(_buildings_fact(element, f"on the {bank} side of the river"))
    if bridge is not None:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        f"a bridge crosses the river {_where(rng, bridge.region)}",
                        "a bridge spans the river",
                        "a small bridge connects the two banks",
                    ],
                )
            )
        )
    return facts


def _facts_intersection(scene: Scene) -> list[_Fact]:
    road, cars = scene.require("road"), scene.first("car")
    cross = road.attrs["junction"] == "cross"
    branch = road.attrs["branch"]

    def overview(rng: np.random.Generator) -> str:
        name = _pick(rng, ["crossroads", "road intersection"]) if cross else "t-junction"
        options = [f"a {name}", f"a {name} {_where(rng, road.region)}"]
        if cars is not None:
            options.append(f"a {name} with {_count(rng, cars.count)} {_plural(cars.count, 'car')}")
        return _pick(rng, options)

    def junction_fact(rng: np.random.Generator) -> str:
        where = _where(rng, road.region)
        if cross:
            return _pick(
                rng,
                [
                    f"two roads cross each other {where}",
                    f"a crossroads is {where}",
                    f"two straight roads intersect {where}",
                ],
            )
        return _pick(
            rng,
            [
                f"a road meets another road at a t-junction {where}",
                f"a side road branches off toward the {branch}",
                f"a t-shaped junction is {where}",
            ],
        )

    def marking_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                f"the roads have {road.color} dashed center lines",
                f"{road.color} dashed lines run along the middle of the roads",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(junction_fact), _Fact(marking_fact)]
    if cars is not None:
        facts.append(
            _cars_fact(cars, "driving on the road" if cars.count == 1 else "driving on the roads")
        )
    for element in scene.elements:
        if element.kind == "building":
            facts.append(_buildings_fact(element))
        elif element.kind == "tree":
            facts.append(_trees_fact(element))
    return facts


def _facts_parking(scene: Scene) -> list[_Fact]:
    cars = scene.first("car")
    building, trees = scene.first("building"), scene.first("tree")
    occupancy = scene.attrs["occupancy"]
    beside = {
        "left": "on the left of",
        "right": "on the right of",
        "top": "above",
        "bottom": "below",
    }

    def overview(rng: np.random.Generator) -> str:
        fullness = {"full": "almost full", "half": "half full", "empty": "almost empty"}[occupancy]
        options = ["a large parking lot", f"a parking lot that is {fullness}"]
        if cars is not None:
            options.append(
                f"a parking lot with {_count(rng, cars.count)} {_plural(cars.count, 'car')}"
            )
        return _pick(rng, options)

    def occupancy_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            {
                "full": ["the parking lot is almost full", "nearly all parking spaces are taken"],
                "half": [
                    "about half of the parking spaces are empty",
                    "the parking lot is half full",
                ],
                "empty": [
                    "the parking lot is almost empty",
                    "most of the parking spaces are empty",
                ],
            }[occupancy],
        )

    facts = [_Fact(overview, clause=False), _Fact(occupancy_fact)]
    if cars is not None:
        n = cars.count

        def car_fact(rng: np.random.Generator) -> str:
            noun = _plural(n, "car")
            options = [f"{_count(rng, n)} {noun} {_be(n)} parked in the parking lot"]
            if n > 2:
                options.append(f"{_count(rng, n)} {noun} of different colors are parked in rows")
            return _pick(rng, options)

        facts.append(_Fact(car_fact))
    if building is not None:
        roof = building.color or "gray"
        region = building.region or "left"

        def building_fact(rng: np.random.Generator) -> str:
            return _pick(
                rng,
                [
                    f"a large building with a {roof} roof is {_where(rng, region)}",
                    f"a big {_roofed(roof)} building stands {beside[region]} the parking lot",
                ],
            )

        facts.append(_Fact(building_fact))
    if trees is not None:
        facts.append(_trees_fact(trees, f"{beside[trees.region or 'left']} the parking lot"))
    return facts


def _facts_beach(scene: Scene) -> list[_Fact]:
    sand, sea = scene.require("sand"), scene.require("sea")
    trees, buildings = scene.first("tree"), scene.first("building")
    road, boats = scene.first("road"), scene.first("boat")
    if trees is not None:
        land = "green trees"
    elif buildings is not None:
        land = "buildings"
    else:
        land = "a road"

    def overview(rng: np.random.Generator) -> str:
        return _pick(
            rng, [f"a {sand.color} beach next to the {sea.color} sea", f"a beach with {land}"]
        )

    def layout_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                f"a {sand.color} beach lies between the {sea.color} sea and {land}",
                f"the sea is {_where(rng, sea.region)} and the beach runs along it",
                f"the {sea.color} sea is {_where(rng, sea.region)}",
            ],
        )

    def wave_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                "white waves wash onto the sandy beach",
                f"white waves roll onto the {sand.color} sand",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(layout_fact), _Fact(wave_fact)]
    if trees is not None:
        facts.append(_trees_fact(trees, f"behind the beach {_WHERE[trees.region or 'right'][0]}"))
    if buildings is not None:
        facts.append(_buildings_fact(buildings, "along the beach"))
    if road is not None:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    ["a road runs along the beach", "a straight road runs parallel to the coast"],
                )
            )
        )
    if boats is not None:
        n = boats.count

        def boat_fact(rng: np.random.Generator) -> str:
            noun = _plural(n, "boat")
            return _pick(
                rng,
                [
                    f"{_count(rng, n)} white {noun} {_be(n)} in the sea",
                    f"{_count(rng, n)} {noun} {_be(n)} sailing on the {sea.color} sea",
                ],
            )

        facts.append(_Fact(boat_fact))
    return facts


def _facts_storagetanks(scene: Scene) -> list[_Fact]:
    tanks = scene.require("tank")
    buildings, road = scene.first("building"), scene.first("road")
    n, color = tanks.count, tanks.color
    rows = int(tanks.attrs["rows"])
    size = tanks.attrs["size"]

    def overview(rng: np.random.Generator) -> str:
        noun = _plural(n, "storage tank")
        return _pick(
            rng,
            [
                f"an industrial area with {_count(rng, n)} {noun}",
                f"{_count(rng, n)} {color} {noun} {_where(rng, tanks.region)}",
            ],
        )

    def tank_fact(rng: np.random.Generator) -> str:
        where = _where(rng, tanks.region)
        arrangement = "in a row" if rows == 1 else f"in {_NUMBER_WORDS[rows]} rows"
        return _pick(
            rng,
            [
                f"{_count(rng, n)} {size} {color} storage tanks are {where}",
                f"{_count(rng, n)} round {color} tanks are arranged {arrangement}",
                f"there are {_count(rng, n)} {size} oil tanks {where}",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(tank_fact)]
    if buildings is not None:
        facts.append(_buildings_fact(buildings, nouns=("building", "factory building")))
    if road is not None:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        "a road passes by the tanks",
                        f"a straight road runs {_pick(rng, _COURSES[road.attrs['orientation']])}",
                    ],
                )
            )
        )
    return facts


def _facts_baseballfield(scene: Scene) -> list[_Fact]:
    fields = scene.require("ball_field")
    trees, lot, cars = scene.first("tree"), scene.first("parking_lot"), scene.first("car")
    buildings = scene.first("building")
    two = fields.count == 2
    regions = fields.attrs["regions"].split(" and ")

    def overview(rng: np.random.Generator) -> str:
        if two:
            return _pick(rng, ["two baseball fields", "two baseball fields next to each other"])
        return _pick(rng, ["a baseball field", f"a baseball field {_where(rng, fields.region)}"])

    def field_fact(rng: np.random.Generator) -> str:
        if two:
            first_where, second_where = _where(rng, regions[0]), _where(rng, regions[1])
            return _pick(
                rng,
                [
                    "two baseball fields are next to each other",
                    f"two baseball fields are {first_where} and {second_where}",
                    f"two fan-shaped fields with {fields.color} infields are side by side",
                ],
            )
        where = _where(rng, fields.region)
        return _pick(
            rng,
            [
                f"a baseball field with a {fields.color} infield is {where}",
                f"there is a baseball field {where}",
                f"a fan-shaped baseball field is {where}",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(field_fact)]
    if trees is not None:
        target = "fields" if two else "field"
        facts.append(_trees_fact(trees, f"around the baseball {target}"))
    if lot is not None:
        n = cars.count if cars is not None else 0

        def lot_fact(rng: np.random.Generator) -> str:
            where = _where(rng, lot.region)
            if n == 0:
                return f"an empty parking lot is {where}"
            return f"a parking lot with {_count(rng, n)} {_plural(n, 'car')} is {where}"

        facts.append(_Fact(lot_fact))
    if buildings is not None:
        facts.append(_buildings_fact(buildings))
    return facts


def _facts_lake(scene: Scene) -> list[_Fact]:
    lake = scene.require("lake")
    large = lake.attrs["size"] == "large"
    trees, road, crop = scene.first("tree"), scene.first("road"), scene.first("field")
    boats, buildings = scene.first("boat"), scene.first("building")

    def overview(rng: np.random.Generator) -> str:
        if large:
            return _pick(
                rng, [f"a large {lake.color} lake", f"a big lake {_where(rng, lake.region)}"]
            )
        return _pick(
            rng, [f"a small {lake.color} pond", f"a small pond {_where(rng, lake.region)}"]
        )

    def lake_fact(rng: np.random.Generator) -> str:
        where = _where(rng, lake.region)
        if large:
            return _pick(rng, [f"a large {lake.color} lake is {where}", f"a big lake lies {where}"])
        return _pick(rng, [f"a small {lake.color} pond is {where}", f"a small lake lies {where}"])

    facts = [_Fact(overview, clause=False), _Fact(lake_fact)]
    if trees is not None:
        n = trees.count

        def tree_fact(rng: np.random.Generator) -> str:
            noun = _plural(n, "tree")
            options = [
                f"{_count(rng, n)} green {noun} {'grows' if n == 1 else 'grow'} near the lake"
            ]
            if n >= 6:
                options.append(f"the lake is surrounded by {_count(rng, n)} {noun}")
            return _pick(rng, options)

        facts.append(_Fact(tree_fact))
    if road is not None:
        course = _COURSES[road.attrs["orientation"]]
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        f"a road passes {_where(rng, road.region)}",
                        f"a straight road runs {_pick(rng, course)} {_where(rng, road.region)}",
                    ],
                )
            )
        )
    if crop is not None:
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        f"a {crop.color} field is {_where(rng, crop.region)}",
                        f"crops grow in a {crop.color} field {_where(rng, crop.region)}",
                    ],
                )
            )
        )
    if boats is not None:
        n_boats = boats.count
        facts.append(
            _Fact(
                lambda rng: (
                    f"{_count(rng, n_boats)} small white {_plural(n_boats, 'boat')} "
                    f"{_be(n_boats)} on the lake"
                )
            )
        )
    if buildings is not None:
        facts.append(_buildings_fact(buildings))
    return facts


def _facts_farmland(scene: Scene) -> list[_Fact]:
    fields = scene.of_kind("field")
    road, buildings, trees = scene.first("road"), scene.first("building"), scene.first("tree")
    colors: list[str] = []
    for element in fields:
        if element.color and element.color not in colors:
            colors.append(element.color)
    color_list = colors[0] if len(colors) == 1 else ", ".join(colors[:-1]) + f" and {colors[-1]}"
    n = len(fields)

    def overview(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                f"farmland with {_NUMBER_WORDS[n]} fields",
                f"some farmland divided into {color_list} fields",
            ],
        )

    def division_fact(rng: np.random.Generator) -> str:
        return _pick(
            rng,
            [
                f"the farmland is divided into {_NUMBER_WORDS[n]} fields",
                f"{color_list} fields are next to each other",
                f"the farmland is made up of {color_list} fields",
            ],
        )

    facts = [_Fact(overview, clause=False), _Fact(division_fact)]
    for element in fields:
        crop, region, stripes = element.color, element.region, element.attrs["stripes"]
        facts.append(
            _Fact(
                lambda rng, crop=crop, region=region, stripes=stripes: _pick(
                    rng,
                    [
                        f"a {crop} field is {_where(rng, region)}",
                        f"{_where(rng, region)} is a {crop} field",
                        f"the {crop} field {_where(rng, region)} has {stripes} stripes",
                        f"crops are planted in {stripes} rows {_where(rng, region)}",
                    ],
                )
            )
        )
    if road is not None:
        course = _COURSES[road.attrs["orientation"]]
        facts.append(
            _Fact(
                lambda rng: _pick(
                    rng,
                    [
                        f"a straight road runs {_pick(rng, course)} between the fields",
                        "a road separates the fields",
                    ],
                )
            )
        )
    if buildings is not None:
        facts.append(_buildings_fact(buildings))
    if trees is not None:
        edge = trees.region or "top"
        facts.append(_trees_fact(trees, f"along the {edge} edge"))
    return facts


_FACT_WRITERS: dict[str, Callable[[Scene], list[_Fact]]] = {
    "airport": _facts_airport,
    "baseballfield": _facts_baseballfield,
    "beach": _facts_beach,
    "farmland": _facts_farmland,
    "forest": _facts_forest,
    "harbor": _facts_harbor,
    "intersection": _facts_intersection,
    "lake": _facts_lake,
    "parking": _facts_parking,
    "residential": _facts_residential,
    "river": _facts_river,
    "storagetanks": _facts_storagetanks,
}


def _tidy(text: str) -> str:
    """Lower-case a caption, fix articles and spacing, and end it with " ." like RSICD."""
    text = " ".join(text.lower().split())
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)
    return f"{text} ."


def write_captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """Write ``CAPTIONS_PER_IMAGE`` different captions, each one or two true facts of the scene."""
    facts = _FACT_WRITERS[scene.label](scene)
    clauses = [fact for fact in facts if fact.clause]
    order = [int(i) for i in rng.permutation(len(facts))]
    captions: list[str] = []
    seen: set[str] = set()
    for attempt in range(20 * CAPTIONS_PER_IMAGE):
        if len(captions) == CAPTIONS_PER_IMAGE:
            break
        fact = facts[order[attempt % len(facts)]]
        text = fact.write(rng)
        if fact.clause and len(clauses) > 1 and rng.random() < 0.45:
            other = clauses[int(rng.integers(len(clauses)))]
            addition = other.write(rng)
            # A third "and" would make the caption hard to read.
            if other is not fact and " and " not in text and " and " not in addition:
                text = f"{text} and {addition}"
        text = _tidy(text)
        if text not in seen:
            seen.add(text)
            captions.append(text)
    # NOTE: a scene with very few facts can run out of distinct wordings. It then repeats its
    # last caption instead of failing. No scene of the default seed does this.
    while len(captions) < CAPTIONS_PER_IMAGE:
        captions.append(captions[-1])
    return captions


# ---------------------------------------------------------------------------------------------
# Dataset files and cache
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoImage:
    """One planned image of the demo dataset: its split, file name, scene and captions."""

    split: str
    file_name: str
    scene: Scene
    captions: tuple[str, ...]


def plan_demo(
    seed: int = DEMO_SEED, split_sizes: dict[str, int] | None = None, classes: Sequence[str] = SCENE_CLASSES
) -> list[DemoImage]:
    """Sample every scene and its captions, without drawing, in the order of the split files.

    Each image's content depends only on ``seed``, its class and its number, so changing a
    split size leaves the other images unchanged. Numbers run on across splits, so every file
    name is unique in the shared image folder.
    """
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    unknown = [label for label in classes if label not in SCENE_CLASSES]
    if unknown or not classes:
        raise ValueError(f"unknown demo scene classes {unknown}; choose from {', '.join(SCENE_CLASSES)}")
    numbers = {label: 0 for label in SCENE_CLASSES}
    planned: list[DemoImage] = []
    for split_index, split in enumerate(SPLITS):
        size = sizes[split]
        if size <= 0 or size % len(classes):
            raise ValueError(
                f"demo split {split!r} has size {size}, expected a positive multiple of "
                f"{len(classes)} scene classes"
            )
        entries: list[DemoImage] = []
        for label in classes:
            # The class's position in SCENE_CLASSES seeds its images, whichever classes are drawn.
            class_index = SCENE_CLASSES.index(label)
            for _ in range(size // len(classes)):
                numbers[label] += 1
                number = numbers[label]
                rng = np.random.default_rng([seed, class_index, number])
                scene = sample_scene(label, rng, noise_seed=(seed, class_index, number, 1))
                captions = tuple(write_captions(scene, rng))
                entries.append(DemoImage(split, f"{label}_{number}.png", scene, captions))
        # Mix the classes in the listing order, as in a real split file.
        order = np.random.default_rng([seed, 1000 + split_index]).permutation(len(entries))
        planned.extend(entries[int(i)] for i in order)
    return planned


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_dataset(
    folder: Path,
    seed: int = DEMO_SEED,
    split_sizes: dict[str, int] | None = None,
    classes: Sequence[str] = SCENE_CLASSES,
) -> None:
    """Write the split files, the images and, last, the manifest into ``folder``."""
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    image_dir = folder / IMAGE_DIR_NAME
    image_dir.mkdir()
    planned = plan_demo(seed, sizes, classes)

    text_files: list[str] = []
    for split in SPLITS:
        entries = [entry for entry in planned if entry.split == split]
        names = "".join(f"{entry.file_name}\n" for entry in entries)
        captions = "".join(f"{caption}\n" for entry in entries for caption in entry.captions)
        for file_name, text in ((f"{split}_filename.txt", names), (f"{split}_caps.txt", captions)):
            with open(folder / file_name, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            text_files.append(file_name)

    image_digest = hashlib.sha256()
    for entry in sorted(planned, key=lambda item: item.file_name):
        buffer = io.BytesIO()
        render_scene(entry.scene).save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
        data = buffer.getvalue()
        (image_dir / entry.file_name).write_bytes(data)
        image_digest.update(entry.file_name.encode() + b"\0" + hashlib.sha256(data).digest())

    manifest = {
        "generator": "rsitr_bench.data.demo",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "splits": {split: sizes[split] for split in SPLITS},
        "classes": list(classes),
        "captions_per_image": CAPTIONS_PER_IMAGE,
        "images": len(planned),
        "sha256": {name: _sha256(folder / name) for name in text_files},
        "images_sha256": image_digest.hexdigest(),
        "numpy": np.__version__,
        "pillow": pillow_version,
    }
    # The manifest is the completeness marker, so it is written only after everything else.
    with open(folder / MANIFEST_NAME, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")


def is_complete_demo(
    folder: Path,
    seed: int = DEMO_SEED,
    split_sizes: dict[str, int] | None = None,
    classes: Sequence[str] = SCENE_CLASSES,
) -> bool:
    """Return whether ``folder`` contains a finished demo dataset of this generator version.

    The check reads the manifest, hashes the split files and counts the images, but it does
    not decode or hash the images.
    """
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    sizes = SPLIT_SIZES if split_sizes is None else split_sizes
    expected_splits = {split: sizes[split] for split in SPLITS}
    if not isinstance(manifest, dict):
        return False
    if manifest.get("version") != GENERATOR_VERSION or manifest.get("seed") != seed:
        return False
    if manifest.get("splits") != expected_splits or manifest.get("classes") != list(classes):
        return False
    digests = manifest.get("sha256")
    if not isinstance(digests, dict) or len(digests) != 2 * len(SPLITS):
        return False
    try:
        for name, digest in digests.items():
            if _sha256(folder / name) != digest:
                return False
        image_count = sum(1 for _ in os.scandir(folder / IMAGE_DIR_NAME))
    except OSError:
        return False
    return image_count == manifest.get("images")


def demo_cache_root(cache_dir: Path | str | None = None) -> Path:
    """Return the cache folder: ``cache_dir``, else $RSITR_CACHE_DIR, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(CACHE_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "rsitr-bench"


def _unwritable_cache_error(cache_root: Path, error: OSError) -> DatasetError:
    reason = error.strerror or str(error)
    return DatasetError(
        f"cannot write the demo dataset to the cache folder {cache_root}: {reason}. "
        f"Set {CACHE_ENV_VAR} to a writable folder."
    )


def _remove_stale_folders(cache_root: Path, name: str = DEMO_DIR_NAME) -> None:
    """Delete temporary and replaced demo folders that an interrupted process left behind."""
    prefixes = (f".{name}.tmp-", f".{name}.stale-")
    now = time.time()
    try:
        entries = sorted(os.scandir(cache_root), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefixes) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > _STALE_TEMP_AGE_S:
            logger.info(
                "Removing leftover demo folder %s, last changed %.0f s ago", entry.path, age
            )
            shutil.rmtree(entry.path, ignore_errors=True)


def _publish(temp: Path, target: Path, is_complete: Callable[[Path], bool] = is_complete_demo) -> None:
    """Rename the finished ``temp`` folder to ``target``, replacing an incomplete ``target``.

    When another process published a complete dataset first, its copy wins and ``temp`` is
    left for the caller to delete.
    """
    for _ in range(5):
        try:
            os.rename(temp, target)
            return
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise
        if is_complete(target):
            logger.info("Another process finished the demo dataset first, using %s", target)
            return
        # Move the incomplete folder aside first, because a rename cannot replace a non-empty
        # folder. Another process may move it at the same moment, so a missing folder is fine.
        stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(target, stale)
        except FileNotFoundError:
            continue
        logger.warning("Replacing incomplete demo dataset folder %s", target)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    raise DatasetError(
        f"could not move the generated demo dataset to {target} because other processes kept "
        "replacing it. Delete that folder and run again."
    )


def ensure_demo(cache_dir: Path | str | None = None) -> Path:
    """Generate the demo dataset on first use and return its folder.

    The folder is ``<cache>/demo-v<version>``, where ``<cache>`` is ``cache_dir``, else
    $RSITR_CACHE_DIR, else $XDG_CACHE_HOME/rsitr-bench or ~/.cache/rsitr-bench. Generation
    writes into a temporary sibling folder and renames it when complete, so an interrupted run
    never leaves a folder that passes the completeness check. Raises DatasetError when the cache
    folder cannot be written.
    """
    return ensure_generated(DEMO_DIR_NAME, DEMO_SEED, SPLIT_SIZES, SCENE_CLASSES, cache_dir)


def ensure_pretraining_corpus(cache_dir: Path | str | None = None) -> Path:
    """Generate, on first use, the corpus that the demo model ``rsitr-tiny``/``demo`` is pretrained on.

    It comes from the same scene generator as the demo dataset with another seed, so it
    shares no image with it, and it draws only half of the scene classes, so that the
    pretrained model meets new scenes and words in the demo dataset, as a CLIP model
    pretrained on web images does in remote-sensing data.
    """
    return ensure_generated(
        PRETRAINING_DIR_NAME, PRETRAINING_SEED, PRETRAINING_SPLIT_SIZES, PRETRAINING_CLASSES, cache_dir
    )


def ensure_generated(
    name: str,
    seed: int,
    split_sizes: dict[str, int],
    classes: Sequence[str],
    cache_dir: Path | str | None = None,
) -> Path:
    """Generate the dataset ``name`` from ``seed`` into the cache on first use and return its folder."""
    cache_root = demo_cache_root(cache_dir)
    target = cache_root / name

    def is_complete(folder: Path) -> bool:
        return is_complete_demo(folder, seed, split_sizes, classes)

    if is_complete(target):
        return target

    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=cache_root))
    except OSError as error:
        raise _unwritable_cache_error(cache_root, error) from error
    _remove_stale_folders(cache_root, name)

    logger.info("Generating the %s dataset in %s", name, target)
    started = time.perf_counter()
    try:
        # mkdtemp makes the folder private, which would hide a shared cache from other users.
        os.chmod(temp, 0o755)
        _write_dataset(temp, seed, split_sizes, classes)
        _publish(temp, target, is_complete)
    except OSError as error:
        raise _unwritable_cache_error(cache_root, error) from error
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    logger.info(
        "Dataset %s ready: %d images in %s, generated in %.1f s",
        name,
        sum(split_sizes.values()),
        target,
        time.perf_counter() - started,
    )
    return target
