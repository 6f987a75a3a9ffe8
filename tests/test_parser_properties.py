"""Property tests: the precomp parser either parses random files correctly or raises DatasetError."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from rsitr_bench.data import read_dataset_folder
from rsitr_bench.errors import DatasetError

names = st.sampled_from(["a_1.jpg", "b_2.jpg", "c_3.tif", "00004.jpg", "d_5.png"])
captions = st.one_of(
    st.sampled_from(["a plane .", "two boats near a quay .", "", "   ", "green fields"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc")), max_size=30),
)


def _write(folder: Path, stem: str, lines: list[str]) -> None:
    (folder / stem).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    train_names=st.lists(names, min_size=0, max_size=8),
    train_captions=st.lists(captions, min_size=0, max_size=40),
    test_names=st.lists(names, min_size=0, max_size=8),
    test_captions=st.lists(captions, min_size=0, max_size=40),
)
@example(  # one name per image, five caption lines each
    train_names=["a_1.jpg", "b_2.jpg"], train_captions=["x ."] * 5 + ["y ."] * 5,
    test_names=["c_3.tif"], test_captions=["z ."] * 5,
)
@example(  # one name per caption line, with an image in two runs
    train_names=["a_1.jpg", "a_1.jpg", "b_2.jpg", "a_1.jpg"], train_captions=["p", "q", "r", "s"],
    test_names=["c_3.tif"], test_captions=["z ."],
)
def test_precomp_parses_or_raises_clearly(train_names, train_captions, test_names, test_captions):
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        _write(folder, "train_filename.txt", train_names)
        _write(folder, "train_caps.txt", train_captions)
        _write(folder, "test_filename.txt", test_names)
        _write(folder, "test_caps.txt", test_captions)
        try:
            dataset = read_dataset_folder(folder, "random")
        except DatasetError as error:
            assert str(error), "a DatasetError must carry a message"
            event("rejected")
            return
    event("parsed")

    for split_name, split in dataset.splits.items():
        stripped = [caption.strip() for caption in (train_captions if split_name == "train" else test_captions)]
        listed_names = train_names if split_name == "train" else test_names
        assert len(set(split.images)) == len(split.images), "an image appears twice"
        assert set(split.images) <= set(listed_names)
        assert all(0 <= index < len(split.images) for index in split.caption_image)
        assert all(caption and caption == caption.strip() for caption in split.captions)
        # Every non-empty caption line is kept, in order.
        assert split.captions == [caption for caption in stripped if caption]
        # Every kept image has at least one caption.
        assert set(split.caption_image) == set(range(len(split.images)))
