import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_root():
    """The MNIST root the suite reads: $MNIST_ROOT, else the repo's data/ (must hold MNIST/raw)."""
    root = Path(os.environ.get("MNIST_ROOT") or REPO / "data").resolve()
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file() or \
        (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file(), \
        f"the tests need MNIST: set MNIST_ROOT to a folder holding MNIST/raw (got {root})"
    return str(root)
