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


@pytest.fixture
def data_sandbox(tmp_path, monkeypatch):
    """``tmp_path`` as the working folder, with its own dataset cache and no download mirror."""
    monkeypatch.setenv("DROPCLI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DROPCLI_DATA_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _one_blas_thread(monkeypatch):
    # Subprocesses started by tests inherit this: small nets are fastest single-threaded.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))
