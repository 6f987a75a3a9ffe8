"""Scene description of the demo dataset: what one image contains, and the shapes that draw it.

Every image comes from a sampled ``Scene``: a list of elements (fields, roads, buildings,
planes, boats, trees, ...) with their count, colour, position and the shapes that draw them.
Positions are named by the regions of a 3x3 grid (``REGIONS``). This module defines those
dataclasses, the regions, the mirrored and transposed canvas frames (``_Frame``), the colour
palette and the helpers that build the shapes of common objects such as planes and trees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IMAGE_SIZE = 64

# Scenes are drawn at twice the stored size and box-filtered down, which smooths the edges.
_CANVAS = 2 * IMAGE_SIZE

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
