"""rsitr-bench: a harness that compares parameter-efficient fine-tuning methods for
remote-sensing image-text retrieval."""

__version__ = "0.1.0"
