"""inspection.py against independent references: numpy/scipy layer by layer, the plain forward."""

from __future__ import annotations

import warnings
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from scipy.signal import correlate2d
from scipy.special import softmax

from reportgen import data
from reportgen.errors import ReportgenError
from reportgen.net import inside, model, saved
from reportgen.run import inspection
from reportgen.run.record import TRAINED_HERE, ModelRecord

# Written out here, not taken from model.SHAPES, so a wrong table there fails too.
EXPECTED_SHAPES = {
    "conv1": (20, 24, 24),
    "act1": (20, 24, 24),
    "pool1": (20, 12, 12),
    "conv2": (50, 8, 8),
    "act2": (50, 8, 8),
    "pool2": (50, 4, 4),
    "flat": (800,),
    "full1": (500,),
    "act3": (500,),
    "full2": (10,),
    "softm": (10,),
}


def network(net: model.LeNet) -> model.Network:
    return model.network(net, ModelRecord(source=TRAINED_HERE, epoch=1))


@pytest.fixture(scope="module")
def mnist() -> data.Dataset:
    return data.load(train_limit=2560, test_limit=1000)


@pytest.fixture(scope="module")
def trained(mnist: data.Dataset) -> model.LeNet:
    """A LeNet trained 40 batches of 64: enough to move the weights away from their start."""
    net = model.build(mx.cpu(), seed=7)
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    x_all, y_all = data.to_input(mnist.train_x), mnist.train_y.astype(np.float32)
    for start in range(0, 40 * 64, 64):
        x = mx.nd.array(x_all[start : start + 64])
        y = mx.nd.array(y_all[start : start + 64])
        with mx.autograd.record():
            loss = loss_fn(net.logits(x), y)
        loss.backward()
        trainer.step(64)
    return net


@pytest.fixture(scope="module", params=["untrained", "trained"])
def any_net(request: pytest.FixtureRequest, trained: model.LeNet) -> model.LeNet:
    if request.param == "untrained":
        return model.build(mx.cpu(), seed=3)
    return trained


def _weights(net: model.LeNet) -> dict[str, np.ndarray]:
    return {name: p.data(mx.cpu()).asnumpy().astype(np.float64) for name, p in net.collect_params().items()}


def _pool(maps: np.ndarray) -> np.ndarray:
    """2x2 max-pool, stride 2, of (c, h, w) maps."""
    c, h, w = maps.shape
    return maps.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def _correlate(maps: np.ndarray, kernels: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid cross-correlation (what a CNN calls convolution): (c,h,w) x (k,c,5,5) -> (k,h-4,w-4)."""
    return np.stack(
        [
            sum(correlate2d(maps[c], kernels[k, c], mode="valid") for c in range(len(maps))) + bias[k]
            for k in range(len(kernels))
        ]
    )


# -- the multi-output block ------------------------------------------------------------------


def test_building_the_block_warns_nothing(any_net: model.LeNet) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        block = inside.multi_output(network(any_net), mx.cpu())
        block(mx.nd.zeros((2, 1, 28, 28)))
    assert [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)] == []


def test_shapes_dtypes_labels_predictions_and_kernels(mnist: data.Dataset, any_net: model.LeNet) -> None:
    cases = [5, 0, 999]
    result = inside.run(network(any_net), mnist.test_x, mnist.test_y, cases, mx.cpu())
    assert list(result.outputs) == list(EXPECTED_SHAPES)
    for layer, shape in EXPECTED_SHAPES.items():
        assert result.outputs[layer].shape == (3, *shape), layer
        assert result.outputs[layer].dtype == np.float32, layer
    assert result.indices.tolist() == cases
    assert result.labels.tolist() == [int(mnist.test_y[i]) for i in cases]
    assert result.predictions.tolist() == result.outputs["softm"].argmax(axis=1).tolist()
    weights = _weights(any_net)
    assert result.kernels["conv1"].shape == (20, 1, 5, 5)
    assert result.kernels["conv2"].shape == (50, 20, 5, 5)
    np.testing.assert_array_equal(result.kernels["conv1"], weights["conv1_weight"])
    np.testing.assert_array_equal(result.kernels["conv2"], weights["conv2_weight"])


def test_last_outputs_equal_the_plain_forward(mnist: data.Dataset, any_net: model.LeNet) -> None:
    x = mx.nd.array(data.to_input(mnist.test_x[:8]))
    outputs = inside.multi_output(network(any_net), mx.cpu())(x)
    assert len(outputs) == 11
    np.testing.assert_array_equal(outputs[-2].asnumpy(), any_net.logits(x).asnumpy())
    np.testing.assert_array_equal(outputs[-1].asnumpy(), any_net(x).asnumpy())
    # Through run(), whose last batch is padded to a fixed size, to float tolerance.
    result = inside.run(network(any_net), mnist.test_x, mnist.test_y, list(range(8)), mx.cpu(), batch_size=5)
    np.testing.assert_allclose(result.outputs["full2"], any_net.logits(x).asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.outputs["softm"], any_net(x).asnumpy(), rtol=1e-5, atol=1e-7)


def test_each_layer_is_what_its_name_says(mnist: data.Dataset, any_net: model.LeNet) -> None:
    """Each layer recomputed in float64 numpy/scipy from the block's previous layer."""
    cases = [0, 1]
    out = inside.run(network(any_net), mnist.test_x, mnist.test_y, cases, mx.cpu()).outputs
    w = _weights(any_net)
    tol = {"rtol": 1e-4, "atol": 1e-5}
    for i, case in enumerate(cases):
        image = mnist.test_x[case].astype(np.float64) / 255.0
        o = {layer: values[i].astype(np.float64) for layer, values in out.items()}
        conv1 = _correlate(image[None], w["conv1_weight"], w["conv1_bias"])
        np.testing.assert_allclose(o["conv1"], conv1, **tol)
        np.testing.assert_allclose(o["act1"], np.tanh(o["conv1"]), **tol)
        np.testing.assert_array_equal(o["pool1"], _pool(o["act1"]))
        conv2 = _correlate(o["pool1"], w["conv2_weight"], w["conv2_bias"])
        np.testing.assert_allclose(o["conv2"], conv2, **tol)
        np.testing.assert_allclose(o["act2"], np.tanh(o["conv2"]), **tol)
        np.testing.assert_array_equal(o["pool2"], _pool(o["act2"]))
        np.testing.assert_array_equal(o["flat"], o["pool2"].reshape(800))
        np.testing.assert_allclose(o["full1"], o["flat"] @ w["full1_weight"].T + w["full1_bias"], **tol)
        np.testing.assert_allclose(o["act3"], np.tanh(o["full1"]), **tol)
        np.testing.assert_allclose(o["full2"], o["act3"] @ w["full2_weight"].T + w["full2_bias"], **tol)
        np.testing.assert_allclose(o["softm"], softmax(o["full2"]), rtol=1e-5, atol=1e-7)


def test_whole_chain_in_numpy_gives_the_same_probabilities(mnist: data.Dataset, trained: model.LeNet) -> None:
    w = _weights(trained)
    image = mnist.test_x[3].astype(np.float64) / 255.0
    a1 = _pool(np.tanh(_correlate(image[None], w["conv1_weight"], w["conv1_bias"])))
    a2 = _pool(np.tanh(_correlate(a1, w["conv2_weight"], w["conv2_bias"])))
    hidden = np.tanh(a2.reshape(800) @ w["full1_weight"].T + w["full1_bias"])
    probabilities = softmax(hidden @ w["full2_weight"].T + w["full2_bias"])
    result = inside.run(network(trained), mnist.test_x, mnist.test_y, [3], mx.cpu())
    np.testing.assert_allclose(result.outputs["softm"][0], probabilities, rtol=1e-4, atol=1e-6)


def test_block_shares_the_parameters() -> None:
    net = model.build(mx.cpu(), seed=11)
    block = inside.multi_output(network(net), mx.cpu())
    x = mx.nd.ones((1, 1, 28, 28))
    before = block(x)[0].asnumpy()
    bias = net.collect_params()["conv1_bias"]
    bias.set_data(bias.data() + 1.0)
    np.testing.assert_allclose(block(x)[0].asnumpy(), before + 1.0, rtol=1e-6, atol=1e-6)


def test_saved_and_loaded_model_gives_the_same_outputs(
    tmp_path: Path, mnist: data.Dataset, trained: model.LeNet
) -> None:
    model.save(trained, tmp_path / "model", epoch=3)
    loaded = saved.load(saved.find(tmp_path), str(tmp_path), mx.cpu())
    assert loaded.record.epoch == 3
    cases = [4, 2, 7]
    here = inside.run(network(trained), mnist.test_x, mnist.test_y, cases, mx.cpu())
    there = inside.run(loaded, mnist.test_x, mnist.test_y, cases, mx.cpu())
    for layer in EXPECTED_SHAPES:
        np.testing.assert_array_equal(there.outputs[layer], here.outputs[layer], err_msg=layer)
    for name in ("conv1", "conv2"):
        np.testing.assert_array_equal(there.kernels[name], here.kernels[name])


def test_second_cpu_context_gives_the_same_numbers(mnist: data.Dataset) -> None:
    net = model.build(mx.cpu(0), seed=5)
    cases = [10, 20, 30]
    first = inside.run(network(net), mnist.test_x, mnist.test_y, cases, mx.cpu(0))
    block = inside.multi_output(network(net), mx.cpu(1))
    assert block(mx.nd.zeros((1, 1, 28, 28), ctx=mx.cpu(1)))[0].context == mx.cpu(1)
    second = inside.run(network(net), mnist.test_x, mnist.test_y, cases, mx.cpu(1))
    for layer in EXPECTED_SHAPES:
        np.testing.assert_array_equal(second.outputs[layer], first.outputs[layer], err_msg=layer)
    # The net itself still answers on its first context, with the same numbers.
    x = mx.nd.array(data.to_input(mnist.test_x[cases]))
    np.testing.assert_array_equal(net(x).asnumpy(), first.outputs["softm"])


def test_many_cases_in_batches_equal_one_at_a_time(mnist: data.Dataset, trained: model.LeNet) -> None:
    cases = np.random.default_rng(0).permutation(1000)[:600].tolist()  # 256 + 256 + 88 (padded)
    batched = inside.run(network(trained), mnist.test_x, mnist.test_y, cases, mx.cpu(), batch_size=256)
    single = inside.run(network(trained), mnist.test_x, mnist.test_y, cases, mx.cpu(), batch_size=1)
    assert batched.indices.tolist() == cases
    for layer in EXPECTED_SHAPES:
        np.testing.assert_allclose(batched.outputs[layer], single.outputs[layer], rtol=1e-5, atol=1e-6, err_msg=layer)
    assert batched.predictions.tolist() == single.predictions.tolist()


def test_run_refuses_bad_input(mnist: data.Dataset) -> None:
    net = model.build(mx.cpu(), seed=1)
    with pytest.raises(ReportgenError, match="holds 1000 images"):
        inside.run(network(net), mnist.test_x, mnist.test_y, [1000], mx.cpu())
    with pytest.raises(ReportgenError, match="no case"):
        inside.run(network(net), mnist.test_x, mnist.test_y, [], mx.cpu())
    with pytest.raises(ReportgenError, match="at least 1"):
        inside.run(network(net), mnist.test_x, mnist.test_y, [0], mx.cpu(), batch_size=0)


# -- choosing the cases ----------------------------------------------------------------------


def _cases(*specs: str) -> list[inspection.Case]:
    return [inspection.parse_case(spec) for spec in specs]


def test_resolve_cases_worst_and_indices() -> None:
    assert inspection.resolve_cases(_cases("worst"), [17, 3], 10000) == [17]
    assert inspection.resolve_cases(_cases("0", "9999"), [], 10000) == [0, 9999]
    assert inspection.resolve_cases(_cases("5", "worst", "5", "17", " 8 ", "WORST"), [17], 100) == [5, 17, 8]


@pytest.mark.parametrize(
    "specs, worst, n_test, message",
    [
        (["12000"], [1], 10000, "--case 12000: the test set holds 10000 images (0-9999)"),
        (["10000"], [1], 10000, "--case 10000: the test set holds 10000 images (0-9999)"),
        (["-1"], [1], 10000, "--case -1: the test set holds 10000 images (0-9999)"),
        (["3", "abc"], [1], 10000, "--case 'abc': neither 'worst' nor a test-set index"),
        (["1.5"], [1], 10000, "--case '1.5': neither 'worst' nor a test-set index"),
        ([""], [1], 10000, "--case '': neither 'worst' nor a test-set index"),
        (
            ["worst"],
            [],
            10000,
            "--case worst: the model makes no mistake on the 10000 test images, "
            "so there is no worst confusion; give a test-set index",
        ),
        (["0"], [], 0, "--case 0: the test set is empty"),
        ([], [1], 10000, "no case to inspect: give --case worst or a test-set index"),
    ],
)
def test_resolve_cases_errors(specs: list[str], worst: list[int], n_test: int, message: str) -> None:
    with pytest.raises(ReportgenError) as caught:
        inspection.resolve_cases(_cases(*specs), worst, n_test)
    assert caught.value.format_message() == message
    assert caught.value.exit_code == 2


# -- summaries, save, load -------------------------------------------------------------------


def _tiny() -> inspection.Inspection:
    act = np.array(
        [[[-1.0, 0.995], [0.0, 0.5]], [[0.0, 0.0], [0.2, -0.99]]], np.float32
    )  # 2 cases of a 2x2 "act" layer; -0.99 is not saturated
    softm = np.array([[0.25, 0.75], [1.0, 1e-4]], np.float32)  # 1e-4 is not a zero
    return inspection.Inspection(
        indices=np.array([7, 42]),
        labels=np.array([4, 9]),
        predictions=np.array([1, 0]),
        outputs={"act": act, "softm": softm},
        kernels={"conv1": np.zeros((1, 1, 5, 5), np.float32)},
    )


def test_summaries_against_hand_values() -> None:
    rows = _tiny().summaries()
    assert [(r["case"], r["index"], r["layer"]) for r in rows] == [
        (0, 7, "act"),
        (0, 7, "softm"),
        (1, 42, "act"),
        (1, 42, "softm"),
    ]
    expected = [  # min, max, mean, saturated, zeros
        (-1.0, 0.995, (-1 + 0.995 + 0 + 0.5) / 4, 2 / 4, 1 / 4),
        (0.25, 0.75, 0.5, 0.0, 0.0),
        (-0.99, 0.2, (0.2 - 0.99) / 4, 0.0, 2 / 4),
        (1e-4, 1.0, (1.0 + 1e-4) / 2, 1 / 2, 0.0),
    ]
    for row, values in zip(rows, expected):
        got = (row["min"], row["max"], row["mean"], row["saturated"], row["zeros"])
        assert got == pytest.approx(values, abs=1e-6), row
        assert all(type(v) is float for v in got)


@pytest.fixture(scope="module")
def small(mnist: data.Dataset, trained: model.LeNet) -> inspection.Inspection:
    return inside.run(network(trained), mnist.test_x, mnist.test_y, [9, 1], mx.cpu())


def test_save_load_round_trip(tmp_path: Path, small: inspection.Inspection) -> None:
    path = small.save(tmp_path / "run" / "inspection.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["inspection.npz"]  # no temp file left
    with np.load(path) as npz:  # the layout other tools read
        assert sorted(npz.files) == sorted(
            [*EXPECTED_SHAPES, "indices", "labels", "predictions", "kernel_conv1", "kernel_conv2"]
        )
        assert npz["act1"].shape == (2, 20, 24, 24)
    back = inspection.Inspection.load(path)
    for name in ("indices", "labels", "predictions"):
        np.testing.assert_array_equal(getattr(back, name), getattr(small, name))
        assert getattr(back, name).dtype == np.int64
    assert list(back.outputs) == list(EXPECTED_SHAPES)
    for layer, values in small.outputs.items():
        np.testing.assert_array_equal(back.outputs[layer], values)
        assert back.outputs[layer].dtype == np.float32
    for name, kernel in small.kernels.items():
        np.testing.assert_array_equal(back.kernels[name], kernel)
    assert back.summaries() == small.summaries()
    # Same inspection, same bytes: the file's sha256 in the manifest is reproducible.
    again = small.save(tmp_path / "again.npz")
    assert again.read_bytes() == path.read_bytes()


def _broken_files(good: Path) -> dict[str, bytes]:
    raw = good.read_bytes()
    return {"not a zip": b"hello, not an npz\n", "truncated": raw[: len(raw) // 2], "empty": b""}


@pytest.mark.parametrize("kind", ["not a zip", "truncated", "empty"])
def test_corrupt_file_is_a_one_line_error(tmp_path: Path, small: inspection.Inspection, kind: str) -> None:
    good = small.save(tmp_path / "good.npz")
    bad = tmp_path / "inspection.npz"
    bad.write_bytes(_broken_files(good)[kind])
    with pytest.raises(ReportgenError) as caught:
        inspection.Inspection.load(bad)
    message = caught.value.format_message()
    assert message.startswith(f"{bad}: ") and "\n" not in message, message


def test_missing_or_malformed_arrays_are_errors(tmp_path: Path, small: inspection.Inspection) -> None:
    with pytest.raises(ReportgenError, match="no such inspection file"):
        inspection.Inspection.load(tmp_path / "nowhere.npz")
    arrays = small.arrays()
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "act2"})
    with pytest.raises(ReportgenError, match=r"missing\.npz: no array 'act2'"):
        inspection.Inspection.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "pool1": arrays["pool1"][:, :10]})
    with pytest.raises(
        ReportgenError,
        match=r"shape\.npz: array 'pool1' is float32 \(2, 10, 12, 12\), "
        r"expected float32 \(2, 20, 12, 12\)",
    ):
        inspection.Inspection.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "cases.npz", **{**arrays, "labels": arrays["labels"][:1]})
    with pytest.raises(ReportgenError, match="array 'labels'"):
        inspection.Inspection.load(tmp_path / "cases.npz")


def test_a_plain_npy_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "inspection.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ReportgenError, match="a single .npy array, not an .npz archive"):
        inspection.Inspection.load(path)
