"""Test-session settings: single-threaded BLAS and torch (small tensors run faster on 2 cores
without thread start-up and contention), and a non-interactive matplotlib backend."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors: one torch thread avoids contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
