"""Entry point for ``python -m rsitr_bench`` and ``torchrun -m rsitr_bench``."""

from rsitr_bench.cli import main

if __name__ == "__main__":
    main()
