"""Test-session settings: single-threaded BLAS (small matrices run faster on 2 cores without
thread start-up), and a non-interactive matplotlib backend."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
