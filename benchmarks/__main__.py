"""``python -m benchmarks``: the performance suite (see :mod:`benchmarks.suite`)."""

import os
import sys

# Before NumPy is imported: the in-process figures run NumPy and PyTorch on the same threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchmarks.suite import main

sys.exit(main())
