"""Pairs of 14x14 MNIST digits, exactly as the course's `generate_pair_sets(N)` makes them.

The course helper (docs/protocol.md) draws pairs with torch's *global* generator right after
`torch.manual_seed(seed)`. We draw the same numbers from a private `torch.Generator`
seeded the same way, so the pairs are `torch.equal` to the course's while the caller's
global random state is left alone.
"""

import contextlib
import io
from functools import lru_cache

import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

from ..errors import DataError
from .mnist import (
    N_TEST_IMAGES,
    N_TRAIN_IMAGES,
    _fix_hint,
    check_data_root,
    check_pair_count,
    download_failed,
    resolve_data_root,
)


@lru_cache(maxsize=4)
def _load_split(root, train):
    """One MNIST split as (N x 1 x 28 x 28 float images in 0..255, int64 labels); cached per process."""
    check_data_root(root, splits=(train,))
    try:
        # torchvision prints download chatter; keep it out of notebooks and logs.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset = MNIST(str(root), train=train, download=True)
    except Exception as error:  # no network, damaged gzip, bad magic number, truncated file...
        if "download" in str(error).lower():
            raise download_failed(root) from None
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"cannot read MNIST under {root} ({type(error).__name__}: {first_line}): "
                        f"{_fix_hint(root)}") from None
    images, labels = dataset.data, dataset.targets
    expected = N_TRAIN_IMAGES if train else N_TEST_IMAGES
    if images.shape != (expected, 28, 28) or labels.shape != (expected,):
        raise DataError(f"MNIST under {root} is damaged: the {'train' if train else 'test'} split has "
                        f"images {tuple(images.shape)} and labels {tuple(labels.shape)}, expected "
                        f"{expected} of each: {_fix_hint(root)}")
    return images.view(-1, 1, 28, 28).float(), labels


def load_mnist(train, root=None):
    return _load_split(resolve_data_root(root), bool(train))


def mnist_to_pairs(n, images, labels, generator):
    """The course's `mnist_to_pairs`, drawing from `generator` instead of the global one."""
    order = torch.randperm(images.size(0), generator=generator)[: 2 * n].view(n, 2)
    # The course pools all 60,000 images, then picks; picking first pools only the 2n used
    # (the same values: each 2x2 average is computed per image, as before).
    pair_input = torch.cat((F.avg_pool2d(images[order[:, 0]], kernel_size=2),
                            F.avg_pool2d(images[order[:, 1]], kernel_size=2)), 1)
    classes = labels[order]
    target = (classes[:, 0] <= classes[:, 1]).long()
    return pair_input, target, classes


def generate_pair_sets(n=1000, seed=0, root=None):
    """(train_input, train_target, train_classes, test_input, test_target, test_classes).

    Equal to the course's `generate_pair_sets(n)` called right after `torch.manual_seed(seed)`:
    the train pairs come first from the 60,000 training images, then the test pairs from the
    10,000 test images, from one generator. Inputs are raw (0..255); see `standardise`.
    """
    check_pair_count(n)
    generator = torch.Generator().manual_seed(int(seed))
    train = mnist_to_pairs(n, *load_mnist(True, root), generator)
    test = mnist_to_pairs(n, *load_mnist(False, root), generator)
    return train + test


def generate_validation_sets(n=1000, seed=0, root=None):
    """(train_input, train_target, train_classes, val_input, val_target, val_classes), for
    choosing models without ever touching the test pairs.

    The training pairs are those of `generate_pair_sets(n, seed)` (the first 2n images of its
    permutation of the MNIST training images); the n validation pairs are the next 2n images
    of that same permutation: digits the training pairs do not contain, and no MNIST test image.
    """
    check_pair_count(n)
    images, labels = load_mnist(True, root)  # the MNIST test images are not even loaded
    train = mnist_to_pairs(n, images, labels, torch.Generator().manual_seed(int(seed)))
    # the same permutation again (same seed): its images 2n..4n-1 are the validation digits
    order = torch.randperm(images.size(0), generator=torch.Generator().manual_seed(int(seed)))
    order = order[2 * n: 4 * n]
    pooled = F.avg_pool2d(images[order], kernel_size=2)  # pair k: images 2k and 2k + 1
    val_input = torch.cat((pooled[0::2], pooled[1::2]), 1)
    val_classes = labels[order].view(n, 2)
    val_target = (val_classes[:, 0] <= val_classes[:, 1]).long()
    return train + (val_input, val_target, val_classes)


def standardise(train_input, *others):
    """Standardise every tensor with the mean and SD of `train_input` (training pairs only)."""
    mean, std = train_input.mean(), train_input.std()
    return tuple((x - mean) / std for x in (train_input, *others))
