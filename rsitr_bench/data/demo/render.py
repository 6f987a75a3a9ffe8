"""Rendering of demo scenes: ``render_scene`` draws a ``Scene`` as a 64x64 RGB image.

The shapes are drawn on a canvas of twice the stored size and box-filtered down. Lighting and
texture noise then come from the scene's own ``noise_seed``, not from the sampling stream.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from rsitr_bench.data.demo.scenes import _CANVAS, IMAGE_SIZE, RGB, Scene, Shape, _darker

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
