"""The explanation stage against independent computation: integrated gradients against a numpy
LeNet (float64, its gradient checked by finite differences) and the completeness check on real
trained models, occlusion entries against plain forward passes, the PCA against numpy's SVD and
np.cov, the neighbours against a brute-force distance matrix; the files' loaders, the figures
and the section's template."""

from __future__ import annotations

import json

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn
from numpy.lib.stride_tricks import sliding_window_view

from reportgen import data
from reportgen.errors import DataError
from reportgen.layers import LAYERS
from reportgen.net import attribution, inside, model, predict, saved, train
from reportgen.net import features as net_features
from reportgen.run.explanation import (
    MAX_STEPS,
    STEPS,
    TOLERANCE,
    Features,
)
from reportgen.run.record import TRAINED_HERE, ModelRecord
from reportgen.stats import features as stats_features

# -- models: one trained by reportgen (unit pixels), one as the seed trained it ------------------


@pytest.fixture(scope="module")
def lenet(small: data.Dataset) -> model.Network:
    """reportgen's LeNet after train.fit: 1 epoch on 3,000 images."""
    net, _ = train.fit(small, train.TrainConfig(epochs=1, seed=5), [mx.cpu()])
    return model.network(net, ModelRecord(source=TRAINED_HERE, epoch=1))


def seed_symbol(hold: bool) -> mx.sym.Symbol:
    """The seed's network, its names and SoftmaxOutput head, with a Dropout before full2 and, with
    hold=True, a BlockGrad before full1: both pass their input on at inference, neither may in a
    gradient."""
    s = mx.sym.Variable("data")
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=20, name="Conv1")
    s = mx.sym.Activation(s, act_type="tanh", name="Act1")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="Pool1")
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=50, name="Conv2")
    s = mx.sym.Activation(s, act_type="tanh", name="Act2")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="Pool2")
    s = mx.sym.flatten(s, name="Flat")
    if hold:
        s = mx.sym.BlockGrad(s, name="Hold")
    s = mx.sym.FullyConnected(s, num_hidden=500, name="Full1")
    s = mx.sym.Activation(s, act_type="tanh", name="Act3")
    s = mx.sym.Dropout(s, p=0.5, name="Drop")
    s = mx.sym.FullyConnected(s, num_hidden=10, name="Full2")
    return mx.sym.SoftmaxOutput(s, name="SoftM")


@pytest.fixture(scope="module")
def seed_net(tmp_path_factory, small: data.Dataset) -> model.Network:
    """The seed's way: Module API, raw pixels, uniform(0.01), 2 epochs of 2,000 images, saved by
    save_checkpoint (with a BlockGrad it did not train with) and loaded as --model loads it."""
    mx.random.seed(42)
    batches = mx.io.NDArrayIter(
        small.train_x[:2000].astype(np.float32)[:, None],
        small.train_y[:2000].astype(np.float32),
        100,
        label_name="SoftM_label",
    )
    module = mx.mod.Module(seed_symbol(hold=False), data_names=["data"], label_names=["SoftM_label"], context=mx.cpu())
    module.fit(
        batches,
        num_epoch=2,
        optimizer="sgd",
        optimizer_params={"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-5},
        initializer=mx.init.Uniform(0.01),
    )
    args, auxs = module.get_params()
    prefix = tmp_path_factory.mktemp("seed") / "mnistModel"
    mx.model.save_checkpoint(str(prefix), 1, seed_symbol(hold=True), args, auxs)
    return saved.load(saved.find(prefix), str(prefix), mx.cpu(), "raw")


@pytest.fixture(scope="module", params=["lenet", "seed_net"])
def any_net(request) -> model.Network:
    return request.getfixturevalue(request.param)


def predictions(network: model.Network, dataset: data.Dataset) -> np.ndarray:
    """What the evaluation predicts: the argmax of the probabilities."""
    return predict.probabilities(network, dataset.test_x, mx.cpu()).argmax(axis=1).astype(np.int64)


# -- a numpy LeNet in float64, with its gradient -------------------------------------------------

NAMES = {
    "lenet": {"conv1": "conv1", "conv2": "conv2", "full1": "full1", "full2": "full2"},
    "seed_net": {"conv1": "Conv1", "conv2": "Conv2", "full1": "Full1", "full2": "Full2"},
}


def weights(network: model.Network, kind: str) -> dict[str, np.ndarray]:
    return {
        f"{layer}_{part}": network.params[f"{name}_{part}"].data(mx.cpu()).asnumpy().astype(np.float64)
        for layer, name in NAMES[kind].items()
        for part in ("weight", "bias")
    }


def _conv(maps: np.ndarray, kernels: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid cross-correlation as one matrix product: (b, c, h, w) x (k, c, 5, 5) -> (b, k, h-4, w-4)."""
    b, c, h, w = maps.shape
    columns = sliding_window_view(maps, (5, 5), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5).reshape(-1, c * 25)
    out = (columns @ kernels.reshape(len(kernels), -1).T).reshape(b, h - 4, w - 4, -1).transpose(0, 3, 1, 2)
    return out + bias[None, :, None, None]


def _conv_input_grad(grad: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """The gradient of _conv's input from its output's (b, k, h, w): each output position hands
    its gradient back, through its kernel, to the 5 x 5 window it read."""
    b, k, h, w = grad.shape
    c = kernels.shape[1]
    windows = (grad.transpose(0, 2, 3, 1).reshape(-1, k) @ kernels.reshape(k, -1)).reshape(b, h, w, c, 5, 5)
    out = np.zeros((b, c, h + 4, w + 4))
    for dy in range(5):
        for dx in range(5):
            out[:, :, dy : dy + h, dx : dx + w] += windows[:, :, :, :, dy, dx].transpose(0, 3, 1, 2)
    return out


def _pool(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling, stride 2, of (b, c, h, w) maps, and a mask of each window's (first) maximum."""
    b, c, h, w = maps.shape
    blocks = maps.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    mask = np.zeros_like(blocks)
    np.put_along_axis(mask, blocks.argmax(axis=-1)[..., None], 1.0, axis=-1)
    mask = mask.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)
    return blocks.max(axis=-1), mask


def _unpool(grad: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(grad, 2, axis=2), 2, axis=3) * mask


def numpy_scores_and_grads(w: dict[str, np.ndarray], x: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F = f . full2(x) and dF/dx for images x (b, 28, 28), float64: (b,) and (b, 28, 28)."""
    a1 = np.tanh(_conv(x[:, None], w["conv1_weight"], w["conv1_bias"]))
    p1, m1 = _pool(a1)
    a2 = np.tanh(_conv(p1, w["conv2_weight"], w["conv2_bias"]))
    p2, m2 = _pool(a2)
    a3 = np.tanh(p2.reshape(len(x), -1) @ w["full1_weight"].T + w["full1_bias"])
    scores = a3 @ w["full2_weight"].T + w["full2_bias"]
    d_h = (f @ w["full2_weight"]) * (1 - a3**2)
    d_p2 = (d_h @ w["full1_weight"]).reshape(p2.shape)
    d_p1 = _conv_input_grad(_unpool(d_p2, m2) * (1 - a2**2), w["conv2_weight"])
    d_x = _conv_input_grad(_unpool(d_p1, m1) * (1 - a1**2), w["conv1_weight"])[:, 0]
    return scores @ f, d_x


def numpy_ig(w: dict[str, np.ndarray], x: np.ndarray, f: np.ndarray, steps: int) -> np.ndarray:
    """Integrated gradients of one image (28, 28) from the zero image, midpoint rule, float64."""
    alphas = (np.arange(steps) + 0.5) / steps
    _, grads = numpy_scores_and_grads(w, alphas[:, None, None] * x, f)
    return x * grads.mean(axis=0)


def test_the_numpy_gradient_is_the_finite_difference(small):
    """The reference itself: its gradient against finite differences in float64, on every ink pixel.

    A fresh network (no saturated units): max pooling makes F only piecewise smooth, and where a
    pooling window holds two near-equal values (saturated tanh units of a trained network, say)
    a difference straddles the kink. Such pixels show as forward and backward differences that
    disagree (8 of the 116 ink pixels of this image), and are left out; they must be few.
    """
    net = model.build(mx.cpu(), seed=3)
    net(mx.nd.zeros((1, 1, 28, 28)))
    w = weights(model.network(net, ModelRecord(source=TRAINED_HERE, epoch=0)), "lenet")
    x = data.to_input(small.test_x[:1])[0, 0].astype(np.float64) * 0.7
    f = np.zeros(10)
    f[3], f[5] = 1.0, -1.0
    (at,), (grad,) = numpy_scores_and_grads(w, x[None], f)
    eps = 1e-7
    ink = np.argwhere(x > 0)
    nudged = np.repeat(x[None], len(ink), axis=0)
    nudged[np.arange(len(ink)), ink[:, 0], ink[:, 1]] += eps
    forward = (numpy_scores_and_grads(w, nudged, f)[0] - at) / eps
    nudged[np.arange(len(ink)), ink[:, 0], ink[:, 1]] -= 2 * eps
    backward = (at - numpy_scores_and_grads(w, nudged, f)[0]) / eps
    smooth = np.isclose(forward, backward, rtol=1e-4, atol=1e-7)
    assert smooth.mean() >= 0.9
    np.testing.assert_allclose(grad[tuple(ink[smooth].T)], ((forward + backward) / 2)[smooth], rtol=1e-4, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lenet", "seed_net"])
def test_integrated_gradients_equal_a_numpy_lenets(kind, request, small):
    """64 equal steps of the midpoint rule, without refinement, on two mistakes and a right answer;
    F at the image and at black too."""
    network = request.getfixturevalue(kind)
    w = weights(network, kind)
    predicted = predictions(network, small)
    cases = [int(i) for i in np.flatnonzero(predicted != small.test_y)[:2]] + [0]
    versus = np.where(small.test_y[cases] != predicted[cases], small.test_y[cases], -1)
    f = attribution.score_weights(predicted[cases], versus)
    x = data.to_input(small.test_x[cases], network.pixels)
    block = inside.layer_block(network, "full2", mx.cpu())
    ig, at_image, at_black, steps = attribution.integrated_gradients(block, x, f, mx.cpu(), 64, max_steps=64)
    assert steps.tolist() == [64, 64, 64]
    for i in range(len(cases)):
        image = x[i, 0].astype(np.float64)
        expected = numpy_ig(w, image, f[i].astype(np.float64), 64)
        np.testing.assert_allclose(ig[i], expected, rtol=0, atol=2e-3 * np.abs(expected).max())
        (expected_image, expected_black), _ = numpy_scores_and_grads(w, np.stack([image, 0 * image]), f[i])
        assert at_image[i] == pytest.approx(expected_image, rel=1e-4, abs=1e-4)
        assert at_black[i] == pytest.approx(expected_black, rel=1e-4, abs=1e-4)
    if kind == "lenet":  # attributions() itself, where 64 steps are enough
        got = attribution.attributions(network, small.test_x, small.test_y, predicted, cases, mx.cpu())
        if (got.steps == 64).all():
            np.testing.assert_allclose(got.integrated_gradients, ig, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_completeness_on_trained_models(any_net, small):
    """Every mistake and a few right answers: the attributions add up to F(x) - F(0) within 2%.

    The seed's model, fed raw pixels, needs more than 64 steps for most images (its integral
    lies mostly in the first hundredth of the path): this exercises the refinement too.
    """
    predicted = predictions(any_net, small)
    wrong = np.flatnonzero(predicted != small.test_y)
    cases = list(dict.fromkeys([int(i) for i in wrong[:20]] + [0, 1, 2, 3]))
    got = attribution.attributions(any_net, small.test_x, small.test_y, predicted, cases, mx.cpu())
    assert got.indices.tolist() == cases
    assert got.complete.all(), got.warnings()
    assert got.warnings() == []
    difference = got.score_image - got.score_baseline
    np.testing.assert_allclose(got.totals, difference, rtol=TOLERANCE, atol=TOLERANCE * 0.1)
    assert (got.steps >= STEPS).all() and (got.steps <= MAX_STEPS).all()
    # A mistake explains the prediction against the label; a right answer the prediction alone.
    for i, index in enumerate(cases):
        assert got.targets[i] == predicted[index]
        assert got.versus[i] == (small.test_y[index] if predicted[index] != small.test_y[index] else -1)
    # Black pixels get nothing: the baseline is black in either scaling.
    ink = small.test_x[cases] > 0
    assert (got.integrated_gradients[~ink] == 0).all()


def test_the_gradient_passes_through_what_inference_passes_through(seed_net):
    """The seed model's Dropout and BlockGrad become identities in the explained graph: a pass
    recorded for training gives inference's values and a gradient all the way to the pixels."""
    full2 = seed_net.layers[LAYERS.index("full2")]
    ops = {node["op"] for node in json.loads(full2.tojson())["nodes"]}
    assert {"Dropout", "BlockGrad"} <= ops
    rewritten = {node["op"] for node in json.loads(inside.inference_graph(full2).tojson())["nodes"]}
    assert not rewritten & {"Dropout", "BlockGrad", "stop_gradient"} and "_copy" in rewritten
    block = inside.layer_block(seed_net, "full2", mx.cpu())
    x = mx.nd.array(np.random.default_rng(1).uniform(0, 255, (4, 1, 28, 28)).astype(np.float32))
    x.attach_grad()
    with mx.autograd.record(train_mode=True):
        recorded = block(x)
        score = recorded[:, 3]
    score.backward()
    np.testing.assert_array_equal(recorded.asnumpy(), block(x).asnumpy())  # no unit dropped
    assert np.abs(x.grad.asnumpy()).max() > 0  # nor the gradient held


def test_occlusion_entries_are_plain_forward_passes(any_net, small):
    """Entries recomputed from full2 of inspection's multi-output block and, for mistakes, from the
    network's own probabilities: F = log p[prediction] - log p[label]."""
    predicted = predictions(any_net, small)
    wrong = [int(i) for i in np.flatnonzero(predicted != small.test_y)[:2]]
    cases = wrong + [0]
    got = attribution.attributions(any_net, small.test_x, small.test_y, predicted, cases, mx.cpu())
    assert got.occlusion.shape == (3, 13, 13)
    assert (got.occlusion_window, got.occlusion_stride) == (4, 2)
    block = inside.multi_output(any_net, mx.cpu())
    for i, index in enumerate(cases):
        image = data.to_input(small.test_x[index : index + 1], any_net.pixels)
        positions = [(r, c) for r in range(13) for c in range(13)]
        hidden = np.repeat(image, len(positions), axis=0)
        for j, (r, c) in enumerate(positions):
            hidden[j, 0, 2 * r : 2 * r + 4, 2 * c : 2 * c + 4] = 0
        batch = np.concatenate([image, hidden])
        full2 = block(mx.nd.array(batch))[-2].asnumpy().astype(np.float64)
        target, versus = got.targets[i], got.versus[i]
        f = full2[:, target] - (full2[:, versus] if versus >= 0 else 0)
        expected = (f[0] - f[1:]).reshape(13, 13)
        np.testing.assert_allclose(got.occlusion[i], expected, rtol=1e-4, atol=1e-4)
        blank = [(r, c) for (r, c) in positions if not small.test_x[index, 2 * r : 2 * r + 4, 2 * c : 2 * c + 4].any()]
        assert blank and all(got.occlusion[i, r, c] == 0 for r, c in blank)  # nothing hidden, exactly 0
        if versus >= 0:
            p = any_net.forward(mx.nd.array(batch)).asnumpy().astype(np.float64)
            ratio = np.log(p[:, target]) - np.log(p[:, versus])
            np.testing.assert_allclose(got.occlusion[i], (ratio[0] - ratio[1:]).reshape(13, 13), rtol=1e-3, atol=1e-3)


def test_explaining_leaves_the_network_as_it_was(lenet, small):
    before = {name: p.data(mx.cpu()).asnumpy().copy() for name, p in lenet.params.items()}
    x = mx.nd.array(data.to_input(small.test_x[:5]))
    out = lenet.forward(x).asnumpy()
    attribution.attributions(lenet, small.test_x, small.test_y, small.test_y, [0, 1], mx.cpu())
    for name, p in lenet.params.items():
        np.testing.assert_array_equal(p.data(mx.cpu()).asnumpy(), before[name])
    np.testing.assert_array_equal(lenet.forward(x).asnumpy(), out)


def test_bad_cases_are_refused(lenet, small):
    for cases, message in (([], "no test image"), ([3, 3], "twice"), ([len(small.test_x)], "beyond")):
        with pytest.raises(DataError, match=message):
            attribution.attributions(lenet, small.test_x, small.test_y, small.test_y, cases, mx.cpu())


def test_a_gluon_export_that_ends_at_its_scores(tmp_path, small):
    """A Gluon network as people write it (tanh inside Conv2D and Dense, no Flatten, no softmax),
    exported and loaded as --model loads it: full2 is its last node."""
    with mx.name.NameManager():
        net = nn.HybridSequential()
        net.add(
            nn.Conv2D(20, 5, activation="tanh"),
            nn.MaxPool2D(2, 2),
            nn.Conv2D(50, 5, activation="tanh"),
            nn.MaxPool2D(2, 2),
            nn.Dense(500, activation="tanh"),
            nn.Dense(10),
        )
    mx.random.seed(3)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.array(data.to_input(small.test_x[:4]))
    logits = net(x).asnumpy()
    net.export(str(tmp_path / "plain"), epoch=1)
    network = saved.load(saved.find(tmp_path / "plain"), "plain", mx.cpu())
    predicted = np.full(len(small.test_y), 0)
    predicted[:4] = logits.argmax(axis=1)
    got = attribution.attributions(network, small.test_x, small.test_y, predicted, [0, 1, 2, 3], mx.cpu())
    assert got.complete.all(), got.warnings()
    f = attribution.score_weights(got.targets, got.versus).astype(np.float64)
    np.testing.assert_allclose(got.score_image, (logits * f).sum(axis=1), rtol=1e-4, atol=1e-5)


# -- act3 features, PCA, neighbours --------------------------------------------------------------


@pytest.mark.slow
def test_features_against_inspection_numpy_pca_and_brute_force(any_net, small):
    predicted = predictions(any_net, small)
    cases = [int(i) for i in np.flatnonzero(predicted != small.test_y)[:6]]
    got = net_features.features(any_net, small.test_x, small.train_x, small.train_y, cases, mx.cpu(), batch_size=700)
    test_act3 = net_features.act3(any_net, small.test_x, mx.cpu())
    train_act3 = net_features.act3(any_net, small.train_x, mx.cpu())
    # act3 is inspection's act3, whatever the batches (the next is computed while one is read).
    chosen = [0, 5, 299, 300, 301, 650, 999]
    inspected = inside.run(any_net, small.test_x, small.test_y, chosen, mx.cpu()).outputs["act3"]
    np.testing.assert_allclose(test_act3[chosen], inspected, rtol=1e-5, atol=1e-6)
    in_batches = net_features.act3(any_net, small.test_x, mx.cpu(), batch_size=300)
    np.testing.assert_allclose(in_batches, test_act3, rtol=1e-5, atol=1e-6)
    # PCA: numpy's SVD of the centred features, up to each component's sign.
    centred = test_act3.astype(np.float64) - test_act3.mean(axis=0, dtype=np.float64)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    signs = np.sign((got.act3_pca * expected).sum(axis=0))
    np.testing.assert_allclose(got.act3_pca, expected * signs, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(got.explained_variance_ratio, s[:2] ** 2 / (s**2).sum(), rtol=1e-6)
    # Neighbours: the full distance matrix, sorted.
    distances = np.sqrt(
        ((test_act3[cases, None, :].astype(np.float64) - train_act3[None].astype(np.float64)) ** 2).sum(-1)
    )
    order = np.argsort(distances, axis=1, kind="stable")[:, :5]
    assert got.neighbours.tolist() == order.tolist()
    np.testing.assert_allclose(got.neighbour_distances, np.take_along_axis(distances, order, axis=1), rtol=1e-9)
    assert got.neighbour_cases.tolist() == cases
    assert got.train_images == len(small.train_x)
    np.testing.assert_array_equal(got.neighbour_labels, small.train_y[order])
    np.testing.assert_array_equal(got.neighbour_images, small.train_x[order])


def test_no_mistake_means_no_neighbours_and_no_pass_over_the_training_images(lenet, small, tmp_path, monkeypatch):
    seen = []
    real = net_features.act3_batches

    def counted(block, images, *args, **kwargs):
        seen.append(len(images))
        return real(block, images, *args, **kwargs)

    monkeypatch.setattr(net_features, "act3_batches", counted)
    got = net_features.features(lenet, small.test_x, small.train_x, small.train_y, [], mx.cpu())
    assert seen == [len(small.test_x)]
    assert got.neighbours.shape == (0, 5) and got.neighbour_cases.shape == (0,)
    again = Features.load(got.save(tmp_path / "features.npz"))
    assert again.neighbours.shape == (0, 5) and again.act3_pca.shape == (len(small.test_x), 2)


def test_pca_against_svd_and_covariance_eigenvectors():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(400, 30)) @ rng.normal(size=(30, 30)) + rng.normal(size=30)).astype(np.float32)
    got = stats_features.pca(x, 2)
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(2):
        assert abs(got.components[k] @ vt[k]) == pytest.approx(1.0, abs=1e-9)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(x.astype(np.float64), rowvar=False))
    for k in range(2):
        assert abs(got.components[k] @ eigenvectors[:, -1 - k]) == pytest.approx(1.0, abs=1e-9)
        assert got.explained_variance[k] == pytest.approx(eigenvalues[-1 - k], rel=1e-9)
    np.testing.assert_allclose(got.explained_variance_ratio, s[:2] ** 2 / (s**2).sum(), rtol=1e-9)
    np.testing.assert_allclose(got.scores, centred @ got.components.T, rtol=1e-12, atol=1e-9)
    # The sign convention: each component's largest loading is positive; a flipped input keeps it.
    for component in got.components:
        assert component[np.abs(component).argmax()] > 0
    np.testing.assert_array_equal(stats_features.pca(x, 2).scores, got.scores)
    np.testing.assert_allclose(stats_features.pca(-x, 2).components, got.components, atol=1e-12)


def test_pca_of_degenerate_data_and_bad_input():
    same = np.ones((5, 4))
    got = stats_features.pca(same, 2)
    assert got.explained_variance_ratio.tolist() == [0.0, 0.0] and not got.scores.any()
    with pytest.raises(ValueError, match="at least 2"):
        stats_features.pca(np.ones((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        stats_features.pca(np.array([[0.0, np.nan], [1.0, 2.0]]))


def brute_force(queries: np.ndarray, refs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((queries[:, None].astype(np.float64) - refs[None].astype(np.float64)) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_nearest_neighbours_equal_a_brute_force_search_whatever_the_chunks(chunk):
    rng = np.random.default_rng(chunk)
    refs = np.tanh(rng.normal(size=(900, 50))).astype(np.float32)
    queries = np.tanh(rng.normal(size=(12, 50))).astype(np.float32)
    indices, distances = stats_features.nearest(queries, refs, 5, chunk)
    expected, expected_d = brute_force(queries, refs, 5)
    assert indices.tolist() == expected.tolist()
    np.testing.assert_allclose(distances, expected_d, rtol=1e-12)


def test_ties_go_to_the_lowest_index_and_chunks_may_come_in_any_order():
    rng = np.random.default_rng(0)
    refs = rng.normal(size=(40, 8))
    query = rng.normal(size=8)
    for i in (31, 4, 17, 22, 9, 36):  # six copies of one vector near the query
        refs[i] = query + 0.01
    indices, distances = stats_features.nearest(query[None], refs, 5, chunk=3)
    assert indices.tolist() == [[4, 9, 17, 22, 31]] and len(set(distances[0].tolist())) == 1
    search = stats_features.Nearest(query[None], 5)
    for start in (30, 0, 20, 10):
        search.add(refs[start : start + 10], start)
    assert search.result()[0].tolist() == [[4, 9, 17, 22, 31]]


def test_too_few_references_are_refused():
    with pytest.raises(ValueError, match="5 neighbours asked for, 3"):
        stats_features.nearest(np.zeros((1, 2)), np.zeros((3, 2)), 5)
