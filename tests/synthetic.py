"""A small dataset written to disk by tests: coloured squares with captions that name the colour.

Real files in the precomp layout, so the whole pipeline (parser, decoder, model, loop) runs
on them, and small enough for a CPU test to train in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {
    "red": (200, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 70, 200),
    "yellow": (220, 210, 50),
    "white": (235, 235, 235),
    "black": (20, 20, 20),
}
POSITIONS = ("left", "right", "top", "bottom")


def write_dataset(folder: Path, train: int = 24, val: int = 6, test: int = 8, seed: int = 0) -> Path:
    """Write train/val/test precomp files and PNG images into ``folder`` and return it."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    colour_names = sorted(COLOURS)
    counter = 0
    for split, count in (("train", train), ("val", val), ("test", test)):
        names, captions = [], []
        for _ in range(count):
            colour = colour_names[int(rng.integers(len(colour_names)))]
            position = POSITIONS[int(rng.integers(len(POSITIONS)))]
            scene = ("farmland", "harbor", "airport")[counter % 3]
            name = f"{scene}_{counter}.png"
            counter += 1
            _draw(images / name, COLOURS[colour], position, rng)
            names.append(name)
            captions.extend(
                [
                    f"a {colour} square on the {position} .",
                    f"there is a {colour} patch at the {position} .",
                    f"the {position} part is {colour} .",
                    f"a {colour} block lies {position} of the scene .",
                    f"{colour} area on the {position} side .",
                ]
            )
        (folder / f"{split}_filename.txt").write_text("\n".join(names) + "\n")
        (folder / f"{split}_caps.txt").write_text("\n".join(captions) + "\n")
    return folder


def _draw(path: Path, colour: tuple[int, int, int], position: str, rng: np.random.Generator) -> None:
    pixels = rng.integers(90, 130, size=(48, 48, 3)).astype(np.uint8)
    half = 24
    box = {
        "left": (slice(None), slice(0, half)),
        "right": (slice(None), slice(half, None)),
        "top": (slice(0, half), slice(None)),
        "bottom": (slice(half, None), slice(None)),
    }[position]
    pixels[box] = colour
    Image.fromarray(pixels).save(path)
