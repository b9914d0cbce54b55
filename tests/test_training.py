import pytest
import torch

import helpers
from helpers.science.losses import loss_weights


@pytest.mark.parametrize("weighting, alpha, expected", [
    # (weighting, alpha) -> weights (L_cmp, L_A + L_B) at epochs 0, 12, 24 of 25
    ("none", 1.0, [(1, 0), (1, 0), (1, 0)]),
    ("eq1", 0.3, [(1, 1), (1, 1), (1, 1)]),
    ("eq2", 0.75, [(1, 0.75), (1, 0.75), (1, 0.75)]),
    ("eq2", 4.0, [(1, 4), (1, 4), (1, 4)]),
    # eq3: alpha from 1 at the first epoch linearly to the labelled alpha at the last
    ("eq3", 0.25, [(0, 1), (0.375, 0.625), (0.75, 0.25)]),
    ("eq3", 0.75, [(0, 1), (0.125, 0.875), (0.25, 0.75)]),
    # the other readings of eq. (3): alpha ** epoch, and geometric from 1 to alpha
    ("eq3-discount", 0.5, [(0, 1), (1 - 0.5 ** 12, 0.5 ** 12), (1 - 0.5 ** 24, 0.5 ** 24)]),
    ("eq3-geometric", 0.25, [(0, 1), (0.5, 0.5), (0.75, 0.25)]),
])
def test_loss_weights_first_middle_last_epoch(weighting, alpha, expected):
    got = [w for epoch in (0, 12, 24) for w in loss_weights(weighting, alpha, epoch, 25)]
    assert got == pytest.approx([w for pair in expected for w in pair])


def test_eq3_with_one_epoch_uses_the_final_alpha():
    assert loss_weights("eq3", 0.25, 0, 1) == pytest.approx((0.75, 0.25))


@pytest.mark.parametrize("weighting", ["eq3", "eq3-discount", "eq3-geometric"])
def test_eq3_refuses_an_alpha_above_1(weighting):
    with pytest.raises(helpers.UsageError, match=f"{weighting} needs alpha in \\[0, 1\\]"):
        helpers.resolve("ws-aux-d0.25", weighting=weighting, alpha=1.5)


def test_head_input_and_initialisation_readings_change_what_they_name():
    from torch import nn

    from helpers.science.models import build_model

    pairs = torch.randn(8, 2, 14, 14)

    def built(**overrides):
        torch.manual_seed(0)
        model = build_model(helpers.resolve("ws-aux", **overrides)).eval()
        return model, model(pairs)

    first, out = built()
    _, probabilities = built(head_input="softmax")
    assert torch.equal(out["digits"], probabilities["digits"])  # the auxiliary loss's logits
    head = first.comparison_head
    assert torch.allclose(probabilities["comparison"], head(out["digits"].softmax(2)))
    assert not torch.allclose(probabilities["comparison"], out["comparison"])
    xavier, _ = built(init="xavier")
    assert all(float(m.bias.detach().abs().max()) == 0 for m in xavier.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
    default, _ = built(init="default")  # PyTorch's own: the first rebuild, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(),
                                                  first.state_dict().values()))


@pytest.mark.slow
def test_history_records_the_weighting_used(mnist_root):
    # eq. (3) to 0.25 over 3 epochs: the digits' weight 1, 0.5, 0.25 (geometric: 0.25^(t/2)),
    # the comparison's its complement; the first rebuild's decayed linearly
    record = helpers.train("ws-aux-d0.25", 0, epochs=3, n_pairs=100, data_root=mnist_root)
    weights = [w for h in record["history"] for w in (h["weight_comparison"], h["weight_digits"])]
    assert weights == pytest.approx([0, 1, 0.5, 0.5, 0.75, 0.25])
    linear = helpers.train("ws-aux-d0.25-first", 0, epochs=3, n_pairs=100, data_root=mnist_root)
    assert [h["weight_digits"] for h in linear["history"]] == pytest.approx([1, 0.625, 0.25])
    first = record["history"][0]
    # eq3 at epoch 1: the loss is the digit terms alone
    assert first["loss"] == pytest.approx(first["loss_digit_first"] + first["loss_digit_second"],
                                          rel=1e-5)


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_beats_chance(mnist_root):
    record = helpers.train("ws-aux", 0, epochs=5, n_pairs=500, data_root=mnist_root)
    losses = [h["loss"] for h in record["history"]]
    assert losses[-1] < 0.6 * losses[0]
    assert record["test_error_rate"] < 30  # always answering 1 gives about 45%
    assert record["history"][-1]["test_errors"] == record["test_errors"]


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(mnist_root):
    small = dict(epochs=2, n_pairs=200, data_root=mnist_root)
    a, b = helpers.train("ws", 3, **small), helpers.train("ws", 3, **small)
    c = helpers.train("ws", 4, **small)
    assert a["history"] == b["history"] and a["test_predictions"] == b["test_predictions"]
    assert a["history"] != c["history"]


@pytest.mark.slow
def test_run_leaves_global_random_state_and_threads_alone(mnist_root):
    torch.manual_seed(11)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    helpers.train("baseline", 0, epochs=1, n_pairs=100, data_root=mnist_root, threads=1)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads


@pytest.mark.slow
def test_record_contents(mnist_root):
    record = helpers.train("baseline", 1, epochs=2, n_pairs=100, batch_size=50, data_root=mnist_root)
    assert record["experiment"] == "baseline" and record["seed"] == 1
    assert record["params"]["batch_size"] == 50 and record["params"]["model"] == "baseline"
    assert record["n_train"] == record["n_test"] == 100
    assert record["test_error_rate"] == pytest.approx(record["test_errors"])  # 100 pairs
    assert len(record["history"]) == 2 and record["n_parameters"] == 70_906
    assert "loss_digit_first" not in record["history"][0]  # the baseline has no digit outputs
    assert len(record["test_predictions"]) == 100 and record["test_digit_predictions"] is None
    assert record["device"] == "cpu" and record["numerics"]["torch"] == torch.__version__


@pytest.mark.slow
@pytest.mark.parametrize("name", ["baseline", "ws-aux", "best"])
def test_evaluation_batch_size_changes_no_output(mnist_root, name):
    """`predict` evaluates in chunks of 250 pairs for speed: chunks of 100 or 250 pairs must give
    exactly the logits of one whole batch, or the records would depend on the chunk size
    (channels-last CPU layout, as in run_experiment). Small chunks are not asked to: their
    matrix products take other kernels on some CPUs (measured: on an Intel AVX-512 host, chunks
    under ~50 pairs round differently; a one-pair chunk takes the matrix-vector path)."""
    from helpers.catalogue import experiments
    from helpers.science import models, training
    from helpers.science.data import generate_pair_sets, standardise

    params = experiments.resolve(name, seed=0, epochs=1, n_pairs=500, data_root=mnist_root)
    train_input, train_target, train_classes, test_input, _, _ = \
        generate_pair_sets(500, 0, mnist_root)
    train_input, test_input = standardise(train_input, test_input)
    threads = torch.get_num_threads()
    torch.set_num_threads(params["threads"])  # as run_experiment does: 1 thread
    try:
        torch.manual_seed(0)
        model = training.to_device(models.build_model(params), torch.device("cpu"))
        training.train(model, params, (train_input, train_target, train_classes),
                       (test_input, *generate_pair_sets(500, 0, mnist_root)[4:6]),
                       torch.Generator().manual_seed(0))
        model.eval()
        with torch.inference_mode():
            whole = model(test_input)
            for size in (100, 250):  # 500 pairs: 5 chunks of 100, 2 of 250
                chunks = [model(test_input[start:start + size]) for start in range(0, 500, size)]
                for key in whole:
                    assert torch.equal(torch.cat([chunk[key] for chunk in chunks]), whole[key]), \
                        (key, size)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_no_progress_frames_where_no_terminal_watches(tmp_path):
    """A script whose stderr is a file gets no tqdm carriage-return frames in it."""
    import os
    import subprocess
    import sys

    log = tmp_path / "train.log"
    environment = {k: v for k, v in os.environ.items() if k != "HELPERS_PROGRESS"}
    code = "import helpers; helpers.train('ws', 0, epochs=2, n_pairs=100)"
    with log.open("w") as stderr:
        done = subprocess.run([sys.executable, "-c", code], stderr=stderr, env=environment)
    assert done.returncode == 0
    assert "\r" not in log.read_text() and "epoch" not in log.read_text()
