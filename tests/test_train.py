"""Training: determinism, several devices, checkpoints and resume, a diverging loss."""

from __future__ import annotations

import contextlib
import json
import re

import mxnet as mx
import numpy as np
import pytest

from reportgen import notebook
from reportgen.errors import ContextError, TrainingError
from reportgen.net import checkpoint, devices, model, train
from reportgen.run.history import History

TWO_EPOCHS = train.TrainConfig(epochs=2)


def params(net) -> dict[str, np.ndarray]:
    return {name: p.data(p.list_ctx()[0]).asnumpy() for name, p in net.collect_params().items()}


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def tiny(small):
    """1,000 training and 500 test images: two epochs take about a second."""
    from dataclasses import replace

    return replace(
        small,
        train_x=small.train_x[:1000],
        train_y=small.train_y[:1000],
        test_x=small.test_x[:500],
        test_y=small.test_y[:500],
    )


@pytest.fixture(scope="module")
def uninterrupted(tiny):
    return train.fit(tiny, TWO_EPOCHS, [mx.cpu()])


def test_history_records_every_batch_and_epoch(uninterrupted):
    _, trained = uninterrupted
    history = trained.to_json()  # history.json's body
    assert len(history["batches"]) == 2 * 10
    assert history["batches"][10] == {**history["batches"][10], "epoch": 2, "batch": 1}
    assert set(history["batches"][0]) == {"epoch", "batch", "loss", "accuracy"}
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert set(history["epochs"][0]) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "seconds",
        "eval_seconds",
        "images_per_second",
    }
    first = history["epochs"][0]
    # The epoch's training numbers are the means of its batches'.
    batches = history["batches"][:10]
    assert first["train_loss"] == pytest.approx(np.mean([b["loss"] for b in batches]), rel=1e-5)
    assert first["train_accuracy"] == pytest.approx(np.mean([b["accuracy"] for b in batches]), rel=1e-5)
    assert all(0 <= b["accuracy"] <= 1 and b["loss"] > 0 for b in history["batches"])
    assert first["images_per_second"] == pytest.approx(1000 / first["seconds"])
    text = json.dumps(history, allow_nan=False)
    again = History.from_json(json.loads(text))
    assert again.to_json() == history


def test_test_accuracy_is_what_the_network_predicts(tiny, uninterrupted):
    net, history = uninterrupted
    probabilities = net(mx.nd.array(tiny.test_x[:, None] / 255.0)).asnumpy()
    accuracy = float(np.mean(probabilities.argmax(axis=1) == tiny.test_y))
    assert history.epochs[-1].test_accuracy == pytest.approx(accuracy, abs=1e-6)


def test_same_seed_same_parameters_bit_for_bit(tiny, uninterrupted):
    again, _ = train.fit(tiny, TWO_EPOCHS, [mx.cpu()])
    assert same(params(again), params(uninterrupted[0]))
    other, _ = train.fit(tiny, train.TrainConfig(epochs=2, seed=43), [mx.cpu()])
    assert not same(params(other), params(uninterrupted[0]))


def plain_gluon_loop(dataset, epochs: int, momentum: float = notebook.MOMENTUM) -> dict[str, np.ndarray]:
    """The textbook loop, written from MXNet's documentation and the seed's settings: autograd,
    SoftmaxCrossEntropyLoss, Trainer('sgd'), batches of 100 in each epoch's documented order."""
    from mxnet import autograd, gluon

    net = model.build(mx.cpu(), seed=notebook.SEED)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    settings = {"learning_rate": notebook.LEARNING_RATE, "momentum": momentum, "wd": notebook.WEIGHT_DECAY}
    trainer = gluon.Trainer(net.collect_params(), "sgd", settings)
    x = mx.nd.array(dataset.train_x[:, None] / np.float32(255))
    y = mx.nd.array(dataset.train_y, dtype="float32")
    for epoch in range(1, epochs + 1):
        order = np.random.default_rng([notebook.SEED, epoch]).permutation(len(x))
        for start in range(0, len(x) - len(x) % 100, 100):
            batch = mx.nd.array(order[start : start + 100], dtype="int64")
            with autograd.record():
                loss = loss_fn(net.logits(x.take(batch)), y.take(batch))
            loss.backward()
            trainer.step(100)
    return params(net)


def test_the_trainer_updates_the_weights_as_a_plain_gluon_loop_bit_for_bit(tiny, uninterrupted):
    # 20 steps through the trainer's own graph and its own update (net/sgd.py).
    assert same(params(uninterrupted[0]), plain_gluon_loop(tiny, epochs=2))
    # Without momentum DirectSGD does not fit: the Trainer's own step, the same loop.
    net, _ = train.fit(tiny, train.TrainConfig(epochs=1, momentum=0.0), [mx.cpu()])
    assert same(params(net), plain_gluon_loop(tiny, epochs=1, momentum=0.0))


def test_one_device_steps_through_direct_sgd(tiny, monkeypatch):
    # With the bit-for-bit test above: DirectSGD's arithmetic is the Trainer's, not just present.
    from reportgen.net import sgd

    calls = []
    real = sgd.DirectSGD.step
    monkeypatch.setattr(sgd.DirectSGD, "step", lambda self: (calls.append(1), real(self))[1])
    train.fit(tiny, train.TrainConfig(epochs=1), [mx.cpu()])
    assert len(calls) == len(tiny.train_x) // notebook.BATCH_SIZE - 1  # the first is Trainer.step's


def test_the_direct_update_is_used_on_one_device_only(tiny):
    from mxnet import gluon

    from reportgen.net import sgd

    net = model.build(mx.cpu(), seed=1)
    net.logits(mx.nd.zeros((1, 1, 28, 28)))  # the weights' shapes, known after a first forward pass
    one = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    assert sgd.DirectSGD.fits(one)
    for changed in ({"momentum": 0.0}, {"momentum": 0.9, "clip_gradient": 1.0}):
        assert not sgd.DirectSGD.fits(gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, **changed}))
    two = model.build([mx.cpu(0), mx.cpu(1)], seed=1)
    for ctx in (mx.cpu(0), mx.cpu(1)):
        two.logits(mx.nd.zeros((1, 1, 28, 28), ctx=ctx))
    assert not sgd.DirectSGD.fits(gluon.Trainer(two.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9}))


def test_two_cpu_contexts_train_data_parallel(tiny, uninterrupted):
    contexts = [mx.cpu(0), mx.cpu(1)]
    net, history = train.fit(tiny, TWO_EPOCHS, contexts)
    p = net.collect_params()["conv1_weight"]
    assert p.list_ctx() == contexts
    # Each device holds the same weights after every step.
    assert np.array_equal(p.data(mx.cpu(0)).asnumpy(), p.data(mx.cpu(1)).asnumpy())
    # Same arithmetic as one device up to the order of the gradient sums.
    one = params(uninterrupted[0])
    for name, value in params(net).items():
        assert np.allclose(value, one[name], atol=1e-2), name
    again, _ = train.fit(tiny, TWO_EPOCHS, contexts)
    assert same(params(again), params(net))
    assert history.epochs[-1].test_accuracy > 0.6


class StopAt:
    """Progress that presses Ctrl-C at the first report of the given epoch, and remembers
    whether each epoch's display was closed."""

    def __init__(self, epoch: int) -> None:
        self.stop_epoch = epoch
        self.closed: list[int] = []

    @contextlib.contextmanager
    def epoch(self, epoch, epochs, batches):
        def update(batches_done, loss, accuracy, images_per_second):
            if epoch == self.stop_epoch:
                raise KeyboardInterrupt

        try:
            yield update
        finally:
            self.closed.append(epoch)

    def end_epoch(self, record):
        pass


def test_interrupt_then_resume_equals_an_uninterrupted_run(tiny, uninterrupted, tmp_path):
    stop = StopAt(2)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny, TWO_EPOCHS, [mx.cpu()], checkpoint_dir=tmp_path, progress=stop, sync_every=5)
    assert stop.closed == [1, 2]  # the interrupted epoch's display was closed too
    kept = json.loads((tmp_path / checkpoint.CHECKPOINT).read_text())
    assert kept["epoch"] == 1
    net, history = train.fit(tiny, TWO_EPOCHS, [mx.cpu()], checkpoint_dir=tmp_path, resume=True)
    assert same(params(net), params(uninterrupted[0]))
    assert history.to_json()["batches"] == uninterrupted[1].to_json()["batches"]
    assert len(history.epochs) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "epoch-0002.params", "epoch-0002.states"]


def test_resume_refuses_a_checkpoint_of_other_settings(tiny, tmp_path):
    train.fit(tiny, train.TrainConfig(epochs=1), [mx.cpu()], checkpoint_dir=tmp_path)
    with pytest.raises(TrainingError, match="learning_rate=0.05, this run has 0.01"):
        train.fit(
            tiny, train.TrainConfig(epochs=2, learning_rate=0.01), [mx.cpu()], checkpoint_dir=tmp_path, resume=True
        )


def test_a_diverging_loss_stops_with_epoch_and_batch(tiny, tmp_path):
    train.fit(tiny, train.TrainConfig(epochs=1), [mx.cpu()], checkpoint_dir=tmp_path)
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    config = train.TrainConfig(epochs=2, learning_rate=1e20)
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf) at epoch 1, batch \d+; try a smaller --lr"):
        train.fit(tiny, config, [mx.cpu()], checkpoint_dir=tmp_path, sync_every=1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good


def test_batches_must_fit_the_data_and_devices(tiny):
    with pytest.raises(TrainingError, match="does not split evenly over 3 devices"):
        train.fit(tiny, train.TrainConfig(epochs=1, batch_size=100), [mx.cpu(0), mx.cpu(1), mx.cpu(2)])
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train.fit(tiny, train.TrainConfig(epochs=1, batch_size=5000), [mx.cpu()])


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cpu", [mx.cpu(0)]),
        ("cpu:0,1", [mx.cpu(0), mx.cpu(1)]),
        ("auto", [mx.cpu(0)]),
        (" CPU:1 ", [mx.cpu(1)]),
    ],
)
def test_parse_contexts(spec, expected):
    assert devices.parse_contexts(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gpu", "no GPU 0 on this machine (0 GPUs found)"),
        ("gpu:0,1", "no GPU 0"),
        ("tpu", "expected auto, cpu, gpu"),
        ("cpu:a", "must be integers"),
        ("cpu:0,0", "distinct"),
    ],
)
def test_parse_contexts_refuses(spec, message):
    with pytest.raises(ContextError, match=re.escape(message)):
        devices.parse_contexts(spec)


def test_auto_takes_every_gpu_there_is(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    assert devices.parse_contexts("auto") == [mx.gpu(0), mx.gpu(1)]
    assert devices.parse_contexts("gpu:1") == [mx.gpu(1)]
    with pytest.raises(ContextError, match=re.escape("no GPU 2 on this machine (2 GPUs found)")):
        devices.parse_contexts("gpu:0,2")
