"""Where the MNIST files are, and whether they are the originals.

Standard library only: the runner checks the files before it starts any worker without
importing torch. `data` loads them.
"""

import hashlib
import os
from pathlib import Path

from ..errors import DataError
from ..files import DEFAULT_DATA

# md5 of the uncompressed originals: a damaged file is caught before it is read.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
N_TRAIN_IMAGES, N_TEST_IMAGES = 60_000, 10_000
MAX_PAIRS = N_TEST_IMAGES // 2  # the 10,000 test images make at most 5000 disjoint pairs


def check_pair_count(n):
    """`n` if it is a number of pairs the MNIST images can make, else DataError."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_PAIRS:
        raise DataError(f"n_pairs must be an integer from 1 to {MAX_PAIRS} (the 10,000 MNIST "
                        f"test images make at most that many pairs), got {n!r}")
    return n


def resolve_data_root(root=None):
    """The folder holding `MNIST/raw`: the argument, else $MNIST_ROOT, else `data/` in the repo."""
    if root in (None, ""):
        root = os.environ.get("MNIST_ROOT") or DEFAULT_DATA
    return Path(root).expanduser().resolve()


def _fix_hint(root):
    return (f"set MNIST_ROOT (or data_root) to the folder holding MNIST/raw, "
            f"or put the four MNIST files in {root / 'MNIST' / 'raw'}")


def _check_raw_files(root, train):
    """Raise DataError if a raw file of this split is present but not the original."""
    prefix = "train" if train else "t10k"
    for name, md5 in MNIST_MD5.items():
        path = root / "MNIST" / "raw" / name
        if name.startswith(prefix) and path.is_file():
            if hashlib.md5(path.read_bytes()).hexdigest() != md5:
                raise DataError(f"MNIST file {path} is damaged or truncated (md5 mismatch): "
                                f"replace it with the original, or {_fix_hint(root)}")


def check_data_root(root=None, splits=(True, False)):
    """The resolved data root; DataError if it is missing (a root the user named must exist:
    only the default data/ may be created by torchvision's download) or if a raw file of
    `splits` (True = train, False = test) is present but damaged."""
    root = resolve_data_root(root)
    if not root.is_dir() and root != DEFAULT_DATA.resolve():
        raise DataError(f"MNIST data root {root} does not exist: {_fix_hint(root)}")
    for train in splits:
        _check_raw_files(root, train)
    return root
