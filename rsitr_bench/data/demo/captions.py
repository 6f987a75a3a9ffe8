"""Captions of demo scenes: ``write_captions`` writes ``CAPTIONS_PER_IMAGE`` captions per image.

The captions are written from the same ``Scene`` as the image, so they name only elements that
are in the picture, in the region where they are drawn. For each scene class, a
``_facts_<class>`` function lists true statements (``_Fact``) about the scene, and each
caption words one or two of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rsitr_bench.data.demo.scenes import Element, Scene, _opposite_region

CAPTIONS_PER_IMAGE = 5

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
