"""Scene sampling for the demo dataset: ``sample_scene`` and one sampler per scene class.

A sampler lays out its scene in a canonical frame through a ``_Builder``. The builder maps
the shapes into the image through a mirror or transpose (``_Frame``) and tracks the taken
pixels, so that objects do not overlap. Its elements become the ``Scene`` that both the image
and its captions are made from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from rsitr_bench.data.demo.render import _draw_shape
from rsitr_bench.data.demo.scenes import (
    _ASPHALT,
    _BARE_LAND,
    _CANVAS,
    _CAR_COLORS,
    _CONCRETE,
    _CROP_COLORS,
    _DIRT,
    _FOREST_FLOOR,
    _GRASS,
    _PLANE_COLORS,
    _ROOF_COLORS,
    _SAND_COLORS,
    _SEA_COLORS,
    _TANK_COLORS,
    _TREE_COLORS,
    _WATER_COLORS,
    ELEMENT_KINDS,
    REGIONS,
    RGB,
    Element,
    Scene,
    Shape,
    _blob,
    _boat_shapes,
    _building_shapes,
    _car_shapes,
    _darker,
    _Frame,
    _opposite_region,
    _plane_shapes,
    _point_in_polygon,
    _rect,
    _region_anchor,
    _region_box,
    _region_parts,
    _road_shapes,
    _rotated,
    _tank_shapes,
    _tree_shapes,
    region_at,
)

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
