"""Dataset loading: formats, splits, scene labels and decoded images."""

from rsitr_bench.data.dataset import SPLITS, RetrievalDataset, Split
from rsitr_bench.data.formats import FORMATS, detect_format, read_dataset_folder
from rsitr_bench.data.images import (
    clear_image_cache,
    decode_count,
    decode_image,
    decode_images,
    image_paths,
    missing_images,
    require_images,
)
from rsitr_bench.data.labels import UCM_CLASSES, UNLABELLED, count_labelled_images, scene_of
from rsitr_bench.data.registry import (
    DATA_ROOT_ENV,
    KNOWN_DATASETS,
    carve_val_split,
    load_dataset,
    load_published_splits,
    make_training_splits,
    resolve_dataset_folder,
)

__all__ = [
    "DATA_ROOT_ENV",
    "FORMATS",
    "KNOWN_DATASETS",
    "SPLITS",
    "UCM_CLASSES",
    "UNLABELLED",
    "RetrievalDataset",
    "Split",
    "carve_val_split",
    "clear_image_cache",
    "count_labelled_images",
    "decode_count",
    "decode_image",
    "decode_images",
    "detect_format",
    "image_paths",
    "load_dataset",
    "load_published_splits",
    "make_training_splits",
    "missing_images",
    "read_dataset_folder",
    "require_images",
    "resolve_dataset_folder",
    "scene_of",
]
