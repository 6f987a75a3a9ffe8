"""Image decoding, the decoded-image cache, and missing-image checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rsitr_bench.data.dataset import RetrievalDataset, Split
from rsitr_bench.data.images import (
    clear_image_cache,
    decode_count,
    decode_images,
    image_paths,
    missing_images,
    require_images,
    resize_and_crop,
)
from rsitr_bench.errors import DatasetError


def gradient(width: int, height: int) -> np.ndarray:
    """Return an RGB uint8 array whose pixels differ, so crop offsets change the result."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    red = (x + 0 * y).astype(np.uint8)
    green = (y + 0 * x).astype(np.uint8)
    blue = ((x + y) / 2).astype(np.uint8)
    return np.stack([red, green, blue], axis=-1)


def make_image(path: Path, mode: str, width: int = 40, height: int = 30) -> Path:
    rgb = Image.fromarray(gradient(width, height))
    if mode == "I;16":
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(grey)
    elif mode == "P":
        image = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    else:
        image = rgb.convert(mode)
    image.save(path)
    return path


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    clear_image_cache()


@pytest.mark.parametrize(
    ("file_name", "mode"),
    [
        ("rgb.jpg", "RGB"),
        ("grey.jpg", "L"),
        ("cmyk.jpg", "CMYK"),
        ("grey.png", "L"),
        ("alpha.png", "RGBA"),
        ("palette.png", "P"),
        ("deep.png", "I;16"),
        ("rgb.tif", "RGB"),
        ("grey.tif", "L"),
        ("alpha.tif", "RGBA"),
        ("palette.tif", "P"),
        ("deep.tif", "I;16"),
    ],
)
def test_decode_modes_to_rgb(tmp_path: Path, file_name: str, mode: str) -> None:
    path = make_image(tmp_path / file_name, mode)
    with Image.open(path) as opened:
        assert opened.mode.startswith(mode.split(";")[0])

    pixels = decode_images([path], size=24)

    assert pixels.dtype == torch.uint8
    assert pixels.shape == (1, 3, 24, 24)
    assert int(pixels.max()) > 100  # not clipped to black by a wrong mode conversion


def test_sixteen_bit_grey_scaled_to_eight_bits(tmp_path: Path) -> None:
    levels = np.array([[0, 257 * 100, 65535, 65535]], dtype=np.uint16).repeat(4, axis=0)
    Image.fromarray(levels).save(tmp_path / "deep.png")

    pixels = decode_images([tmp_path / "deep.png"], size=4)

    assert pixels[0, :, 0, 0].tolist() == [0, 0, 0]
    assert pixels[0, :, 0, 1].tolist() == [100, 100, 100]
    assert pixels[0, :, 0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(("width", "height"), [(300, 200), (199, 357), (224, 224), (100, 60)])
def test_geometry_matches_open_clip(tmp_path: Path, width: int, height: int) -> None:
    open_clip_transform = pytest.importorskip("open_clip.transform")
    preprocess = open_clip_transform.image_transform(224, is_train=False)
    resize, center_crop = preprocess.transforms[:2]
    path = tmp_path / "gradient.png"
    Image.fromarray(gradient(width, height)).save(path)

    with Image.open(path) as image:
        expected = np.array(center_crop(resize(image.convert("RGB"))))
    pixels = decode_images([path], size=224)

    assert expected.shape == (224, 224, 3)
    assert torch.equal(pixels[0], torch.from_numpy(expected).permute(2, 0, 1))


def test_resize_and_crop_short_side(tmp_path: Path) -> None:
    image = Image.fromarray(gradient(90, 30))

    result = resize_and_crop(image, 15)

    assert result.size == (15, 15)


def test_decode_once_per_path_and_size(tmp_path: Path) -> None:
    paths = [make_image(tmp_path / f"{index}.png", "RGB") for index in range(3)]
    start = decode_count()

    first = decode_images(paths, size=16)
    after_first = decode_count()
    second = decode_images(list(reversed(paths)) + [str(paths[0])], size=16)
    after_second = decode_count()
    decode_images(paths[:1], size=8)
    after_other_size = decode_count()

    assert after_first - start == 3
    assert after_second == after_first
    assert torch.equal(second[0], first[2])
    assert torch.equal(second[3], first[0])
    assert after_other_size - after_second == 1


def test_duplicate_paths_decoded_once(tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.png", "RGB")
    start = decode_count()

    pixels = decode_images([path, path, tmp_path / "." / "a.png"], size=8)

    assert decode_count() - start == 1
    assert torch.equal(pixels[0], pixels[1])
    assert torch.equal(pixels[0], pixels[2])


def test_clear_cache_decodes_again(tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.png", "RGB")
    decode_images([path], size=8)
    start = decode_count()

    clear_image_cache()
    decode_images([path], size=8)

    assert decode_count() - start == 1


def test_concurrent_callers_decode_once(tmp_path: Path) -> None:
    paths = [make_image(tmp_path / f"{index}.png", "RGB", 400, 300) for index in range(6)]
    start = decode_count()
    results: list[torch.Tensor] = []
    barrier = threading.Barrier(4)

    def decode() -> None:
        barrier.wait()
        results.append(decode_images(paths, size=64, num_threads=2))

    threads = [threading.Thread(target=decode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert decode_count() - start == len(paths)
    assert len(results) == 4
    assert all(torch.equal(result, results[0]) for result in results)


def test_progress_callback(tmp_path: Path) -> None:
    paths = [make_image(tmp_path / f"{index}.png", "RGB") for index in range(5)]
    decode_images(paths[:2], size=8)
    calls: list[tuple[int, int]] = []

    decode_images(paths, size=8, progress=lambda done, total: calls.append((done, total)))

    assert calls[0] == (2, 5)
    assert calls[-1] == (5, 5)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_empty_path_list(tmp_path: Path) -> None:
    pixels = decode_images([], size=8)

    assert pixels.shape == (0, 3, 8, 8)


def test_corrupt_image_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"this is text, not an image")

    with pytest.raises(DatasetError) as raised:
        decode_images([path], size=8)

    message = str(raised.value)
    assert str(path) in message
    assert "UnidentifiedImageError" in message


def test_truncated_image_named(tmp_path: Path) -> None:
    good = make_image(tmp_path / "good.png", "RGB", 200, 200)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])

    with pytest.raises(DatasetError, match="truncated.png"):
        decode_images([good, truncated], size=8)


def test_missing_image_file_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="absent.jpg.*does not exist"):
        decode_images([tmp_path / "absent.jpg"], size=8)


def dataset_with_images(tmp_path: Path, present: list[str]) -> RetrievalDataset:
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for name in present:
        make_image(image_dir / name, "RGB")
    train = Split(
        images=["a.png", "b.png", "c.png", "shared.png"],
        captions=["a", "b", "c", "s"],
        caption_image=[0, 1, 2, 3],
    )
    test = Split(
        images=["shared.png", "d.png", "e.png", "f.png", "g.png"],
        captions=["s", "d", "e", "f", "g"],
        caption_image=[0, 1, 2, 3, 4],
    )
    return RetrievalDataset(
        name="example",
        root=tmp_path,
        image_dir=image_dir,
        format="precomp",
        splits={"train": train, "test": test},
    )


def test_missing_images_per_split(tmp_path: Path) -> None:
    dataset = dataset_with_images(tmp_path, present=["a.png", "d.png"])

    missing = missing_images(dataset)

    assert missing == {
        "train": ["b.png", "c.png", "shared.png"],
        "test": ["shared.png", "e.png", "f.png", "g.png"],
    }


def test_require_images_message(tmp_path: Path) -> None:
    dataset = dataset_with_images(tmp_path, present=["a.png", "d.png"])

    with pytest.raises(DatasetError) as raised:
        require_images(dataset)

    message = str(raised.value)
    assert "6 of 8 images are missing" in message
    assert "b.png, c.png, shared.png, e.png, f.png, ..." in message
    assert "g.png" not in message
    assert str(tmp_path / "images") in message
    assert "--image-dir" in message
    assert "--data-root" in message


def test_require_images_passes_when_present(tmp_path: Path) -> None:
    names = ["a.png", "b.png", "c.png", "shared.png", "d.png", "e.png", "f.png", "g.png"]
    dataset = dataset_with_images(tmp_path, present=names)

    require_images(dataset)

    assert image_paths(dataset, "test")[1] == tmp_path / "images" / "d.png"
    assert decode_images(image_paths(dataset, "test"), size=8).shape == (5, 3, 8, 8)
