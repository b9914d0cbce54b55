"""`device`: how it is resolved and checked is tested here without a GPU. The CUDA code path
itself (data and model moved with .to(device), batch-order generator on the CPU, fork_rng over
the GPU's generator, deterministic cuDNN) runs only on a machine that has one."""

import pytest
import torch

import helpers
from helpers import UsageError, resolve
from helpers.science.training import resolve_device


def test_auto_means_cuda_exactly_when_a_gpu_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")  # asked for: never moved


def test_cuda_is_accepted_with_a_gpu_and_refused_in_one_line_without(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve("ws", device="CUDA")["device"] == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="no CUDA GPU is available: use device auto or cpu"):
        resolve("ws", device="cuda")


@pytest.mark.slow
def test_a_run_leaves_the_cudnn_settings_as_it_found_them(mnist_root):
    cudnn = torch.backends.cudnn
    before = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
    record = helpers.train("ws", 0, epochs=1, n_pairs=100, device="cpu", data_root=mnist_root)
    assert record["device"] == "cpu"
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == before
