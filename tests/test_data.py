import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

from helpers import DataError
from helpers.science.data import generate_pair_sets, standardise
from helpers.science.mnist import MNIST_MD5


def course_generate_pair_sets(n, root):
    """The course's helper, re-implemented from its description (docs/protocol.md): global RNG,
    train then test."""
    def to_pairs(images, labels):
        images = F.avg_pool2d(images, kernel_size=2)
        a = torch.randperm(images.size(0))[: 2 * n].view(n, 2)
        pair_input = torch.cat((images[a[:, 0]], images[a[:, 1]]), 1)
        classes = labels[a]
        return pair_input, (classes[:, 0] <= classes[:, 1]).long(), classes

    train, test = MNIST(root, train=True, download=True), MNIST(root, train=False, download=True)
    return (to_pairs(train.data.view(-1, 1, 28, 28).float(), train.targets)
            + to_pairs(test.data.view(-1, 1, 28, 28).float(), test.targets))


@pytest.mark.parametrize("seed", [0, 1, 7, 123456])
def test_pairs_equal_the_course_helper_after_manual_seed(mnist_root, seed):
    ours = generate_pair_sets(1000, seed, mnist_root)
    torch.manual_seed(seed)
    theirs = course_generate_pair_sets(1000, mnist_root)
    assert len(ours) == 6
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_global_random_state_untouched(mnist_root):
    torch.manual_seed(42)
    state = torch.get_rng_state()
    generate_pair_sets(100, 3, mnist_root)
    assert torch.equal(torch.get_rng_state(), state)


def test_shapes_targets_and_classes_consistent(mnist_root):
    x, y, c, xt, yt, ct = generate_pair_sets(500, 5, mnist_root)
    assert x.shape == xt.shape == (500, 2, 14, 14) and x.dtype == torch.float32
    assert c.shape == ct.shape == (500, 2) and c.dtype == torch.int64
    for classes, target in ((c, y), (ct, yt)):
        assert torch.equal(target, (classes[:, 0] <= classes[:, 1]).long())
        assert classes.min() >= 0 and classes.max() <= 9
    assert 0.0 <= x.min() and x.max() <= 255.0
    # about 55% of targets are 1 (docs/protocol.md)
    assert 0.45 < float(torch.cat((y, yt)).float().mean()) < 0.65


def test_different_seeds_give_different_pairs(mnist_root):
    assert not torch.equal(generate_pair_sets(100, 0, mnist_root)[0],
                           generate_pair_sets(100, 1, mnist_root)[0])


def test_standardise_uses_training_statistics_only(mnist_root):
    x, _, _, xt, _, _ = generate_pair_sets(300, 0, mnist_root)
    sx, sxt = standardise(x, xt)
    assert abs(float(sx.mean())) < 1e-4 and abs(float(sx.std()) - 1) < 1e-4
    assert torch.allclose(sxt, (xt - x.mean()) / x.std())


@pytest.mark.parametrize("n", [0, -1, 5001, 2.5, True])
def test_bad_number_of_pairs(mnist_root, n):
    with pytest.raises(DataError, match="n_pairs"):
        generate_pair_sets(n, 0, mnist_root)


def test_missing_root_gives_one_clear_line(tmp_path):
    with pytest.raises(DataError) as error:
        generate_pair_sets(10, 0, tmp_path / "nowhere")
    message = str(error.value)
    assert "does not exist" in message and "MNIST_ROOT" in message and "\n" not in message


def test_empty_root_without_network_says_files_missing(tmp_path, monkeypatch):
    # Make the download fail fast and for sure, as on a machine without network.
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as error:
        generate_pair_sets(10, 0, tmp_path)
    assert "missing" in str(error.value) and "MNIST/raw" in str(error.value)


def _copy_mnist(mnist_root, target):
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        shutil.copy(Path(mnist_root) / "MNIST" / "raw" / name, raw / name)
    return raw


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_file_is_named(mnist_root, tmp_path, damage):
    raw = _copy_mnist(mnist_root, tmp_path)
    victim = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[:500]
    else:
        data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError) as error:
        generate_pair_sets(10, 0, tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(error.value) and "damaged" in str(error.value)


def test_root_from_environment(mnist_root, monkeypatch):
    monkeypatch.setenv("MNIST_ROOT", mnist_root)
    assert torch.equal(generate_pair_sets(50, 2)[1], generate_pair_sets(50, 2, mnist_root)[1])
