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


def pytest_sessionstart(session):
    """Without MNIST every test that trains fails alike, minutes in: stop at once, in one line
    (files missing under the default data/ are downloaded first, as the runner does)."""
    from helpers.errors import DataError
    from helpers.science.mnist import ensure_data_root

    try:
        ensure_data_root()
    except DataError as error:
        pytest.exit(f"error: {error}", returncode=2)
