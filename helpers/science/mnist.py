"""Where the MNIST files are, and whether they are the originals.

Standard library only: the runner checks the files before it starts any worker without
importing torch (torchvision is imported only to download missing files into the default
data/ folder). `data` loads them.
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


def _raw_files(root, splits):
    """(path, md5) of the raw files of `splits` (True = train, False = test)."""
    prefixes = tuple("train" if train else "t10k" for train in splits)
    return [(root / "MNIST" / "raw" / name, md5) for name, md5 in MNIST_MD5.items()
            if name.startswith(prefixes)]


def _present(path):
    """Whether `path` or its gzipped original (which torchvision extracts) is there."""
    return path.exists() or path.with_name(path.name + ".gz").exists()


def _check_raw_file(path, md5, root):
    """DataError if `path` is there but not a regular file, unreadable, or not the original."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists() and not candidate.is_file():  # never read: a FIFO would hang
            kind = "a folder" if candidate.is_dir() else "not a regular file"
            raise DataError(f"MNIST file {candidate} is {kind}: move it away, or "
                            f"{_fix_hint(root)}")
    if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != md5:
        raise DataError(f"MNIST file {path} is damaged or truncated (md5 mismatch): "
                        f"replace it with the original, or {_fix_hint(root)}")
    if not path.exists() and _present(path):
        path.with_name(path.name + ".gz").open("rb").close()  # readable?


def check_data_root(root=None, splits=(True, False)):
    """The resolved data root, once every raw file of `splits` (True = train, False = test)
    is there, a regular readable file and the original (md5); else a one-line DataError.
    Only under the default data/ may files be missing: torchvision downloads them there
    (`ensure_data_root`). Standard library only: the runner calls it before any worker."""
    root = resolve_data_root(root)
    default = root == DEFAULT_DATA.resolve()
    try:
        if not root.is_dir() and not default:
            raise DataError(f"MNIST data root {root} does not exist: {_fix_hint(root)}")
        for path, md5 in _raw_files(root, splits):
            if not _present(path) and not default:
                raise DataError(f"MNIST file {path} is missing: {_fix_hint(root)}")
            _check_raw_file(path, md5, root)
    except PermissionError as error:
        raise DataError(f"MNIST file or folder {error.filename} cannot be read (Permission "
                        f"denied): fix its permissions, or {_fix_hint(root)}") from None
    return root


def missing_files(root, splits=(True, False)):
    """The raw files of `splits` under `root` that are missing, gzipped or not."""
    return [path for path, _ in _raw_files(resolve_data_root(root), splits)
            if not _present(path)]


def download_failed(root):
    return DataError(f"MNIST files are missing under {root / 'MNIST' / 'raw'} and could not "
                     f"be downloaded (no network?): {_fix_hint(root)}")


def ensure_data_root(root=None, splits=(True, False)):
    """`check_data_root`, then a download of the files missing under the default data/ (the
    one case where torchvision may download them): done once, here, before any run starts,
    instead of in every kernel. DataError in one line if that fails."""
    root = check_data_root(root, splits)
    if missing_files(root, splits):
        import contextlib
        import io

        # only on this rare path: torchvision imports torch
        from torchvision.datasets import MNIST

        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                for train in splits:
                    MNIST(str(root), train=train, download=True)
        except Exception:  # no network, a mirror gone, a full disk: whatever it is, the fix
            raise download_failed(root) from None  # is to provide the files
        root = check_data_root(root, splits)
        if missing_files(root, splits):
            raise download_failed(root)
    return root
