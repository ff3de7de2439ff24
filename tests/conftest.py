import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests' helper modules

TINY = """\
name: tiny
seed: 0
data: {dataset: digits, num_train: 100, num_val: 50}
model: {hidden_dims: [16]}
dropout: {keep_prob: 0.5}
train: {epochs: 2, batch_size: 50}
"""


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(autouse=True)
def _one_blas_thread(monkeypatch):
    # Subprocesses started by tests inherit this: small nets are fastest single-threaded.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))
