"""Models people already have (saved.py, graph.py): each kind built here, in the test, and
reportgen's predictions and layer outputs compared with MXNet's own Module API on them.

The Module API binds with MXNET_SUBGRAPH_BACKEND=NONE: the 1.9.1 wheel otherwise fuses
convolution and tanh under Module (not under Gluon), which moves probabilities by ~5e-7 and,
bound on a group of internal outputs, returns wrong values for the fused ones. Both sides run
at one batch size: FullyConnected results differ by ~1e-6 between batch sizes.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import mxnet as mx
import numpy as np
import pypdf
import pytest
from click.testing import CliRunner
from mxnet.gluon import nn
from scipy.special import softmax

from reportgen import data
from reportgen.cli import main
from reportgen.errors import ModelError
from reportgen.layers import LAYERS
from reportgen.net import graph, inside, model, predict, saved
from reportgen.run import evaluation

N = 500  # test images compared
SEED_NAMES = ("Conv1", "Act1", "Pool1", "Conv2", "Act2", "Pool2", "Flat", "Full1", "Act3", "Full2", "SoftM")
AUTO_NAMES = (
    "convolution0",
    "activation0",
    "pooling0",
    "convolution1",
    "activation1",
    "pooling1",
    "flatten0",
    "fullyconnected0",
    "activation2",
    "fullyconnected1",
    "softmaxoutput0",
)
# A Gluon network as people write it: activations inside Conv2D and Dense, no Flatten (Dense
# flattens), no softmax (the loss applies it): no node of its own for flat and softm.
PLAIN_NAMES = (
    "conv0_fwd",
    "conv0_tanh_fwd",
    "pool0_fwd",
    "conv1_fwd",
    "conv1_tanh_fwd",
    "pool1_fwd",
    None,
    "dense0_fwd",
    "dense0_tanh_fwd",
    "dense1_fwd",
    None,
)


def raw(images: np.ndarray) -> np.ndarray:
    """What the seed fed: float32 (n, 1, 28, 28), 0-255."""
    return images.astype(np.float32).reshape(-1, 1, 28, 28)


def unit(images: np.ndarray) -> np.ndarray:
    return raw(images) / np.float32(255)


def seed_symbol(
    act="tanh", filters=(20, 50), kernel=(5, 5), pool="max", units=500, stride=True, extra=False, head="out"
):
    """The seed's network as its R code builds it (Conv1 ... SoftM); each keyword changes one thing."""
    s = mx.sym.Variable("data")
    s = mx.sym.Convolution(s, kernel=kernel, num_filter=filters[0], name="Conv1")
    s = mx.sym.Activation(s, act_type=act, name="Act1")
    if extra:
        s = mx.sym.Convolution(s, kernel=(3, 3), pad=(1, 1), num_filter=20, name="Extra")
    if pool is not None:
        strides = {"stride": (2, 2)} if stride else {}
        s = mx.sym.Pooling(s, pool_type=pool, kernel=(2, 2), name="Pool1", **strides)
    s = mx.sym.Convolution(s, kernel=kernel, num_filter=filters[1], name="Conv2")
    s = mx.sym.Activation(s, act_type="tanh", name="Act2")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="Pool2")
    s = mx.sym.flatten(s, name="Flat")
    s = mx.sym.FullyConnected(s, num_hidden=units, name="Full1")
    s = mx.sym.Activation(s, act_type="tanh", name="Act3")
    s = mx.sym.FullyConnected(s, num_hidden=10, name="Full2")
    heads = {
        "out": lambda: mx.sym.SoftmaxOutput(s, name="SoftM"),  # adds the input SoftM_label
        "softmax": lambda: mx.sym.softmax(s, name="SoftM"),
        "log_softmax": lambda: mx.sym.log_softmax(s, name="SoftM"),
        "none": lambda: s,
    }
    return heads[head]()


def auto_symbol() -> mx.sym.Symbol:
    """The same layers left unnamed: MXNet calls them convolution0, activation0, ..."""
    with mx.name.NameManager():  # fresh counters: names start at 0
        s = mx.sym.var("data")
        for filters in (20, 50):
            s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=filters)
            s = mx.sym.Activation(s, act_type="tanh")
            s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2))
        s = mx.sym.Flatten(s)
        s = mx.sym.Activation(mx.sym.FullyConnected(s, num_hidden=500), act_type="tanh")
        return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(s, num_hidden=10))


def train_module(symbol: mx.sym.Symbol, dataset: data.Dataset, seed: int) -> mx.mod.Module:
    """Two epochs of 20 batches of 100 on raw pixels with the seed's settings and R's default
    initializer, uniform(-0.01, 0.01)."""
    mx.random.seed(seed)
    label = [name for name in symbol.list_arguments() if name.endswith("_label")][0]
    batches = mx.io.NDArrayIter(
        raw(dataset.train_x[:2000]), dataset.train_y[:2000].astype(np.float32), 100, label_name=label
    )
    module = mx.mod.Module(symbol, data_names=["data"], label_names=[label], context=mx.cpu())
    module.fit(
        batches,
        num_epoch=2,
        optimizer="sgd",
        optimizer_params={"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-5},
        initializer=mx.init.Uniform(0.01),
    )
    return module


def train_gluon(net: nn.HybridBlock, logits: nn.HybridBlock, dataset: data.Dataset) -> None:
    """Ten batches of 100 on unit pixels, as reportgen trains."""
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for start in range(0, 1000, 100):
        x, y = (
            mx.nd.array(unit(dataset.train_x[start : start + 100])),
            mx.nd.array(dataset.train_y[start : start + 100]),
        )
        with mx.autograd.record():
            value = loss(logits(x), y)
        value.backward()
        trainer.step(100)


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory, small) -> tuple[Path, int, str]:
    """The seed notebook's model: its symbol and names, trained on raw pixels with the Module
    API, saved as mx.model.save(model, "mnistModel", 1) saves it."""
    prefix = tmp_path_factory.mktemp("seed") / "mnistModel"
    train_module(seed_symbol(), small, seed=42).save_checkpoint(str(prefix), 1)
    return prefix, 1, "raw"


@pytest.fixture(scope="module")
def auto_model(tmp_path_factory, small) -> tuple[Path, int, str]:
    prefix = tmp_path_factory.mktemp("auto") / "auto"
    train_module(auto_symbol(), small, seed=11).save_checkpoint(str(prefix), 3)
    return prefix, 3, "raw"


@pytest.fixture(scope="module")
def mynet_model(tmp_path_factory, small) -> tuple[Path, int, str]:
    """reportgen's own LeNet exported by Gluon under another prefix, without reportgen's note."""
    net = model.build(mx.cpu(), seed=7)
    train_gluon(net, net.logits, small)
    net(mx.nd.zeros((1, 1, 28, 28)))
    prefix = tmp_path_factory.mktemp("mynet") / "mynet"
    net.export(str(prefix), epoch=2)
    return prefix, 2, "unit"


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory, small) -> tuple[Path, int, str]:
    with mx.name.NameManager():  # Gluon's default names count from 0 in here
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
    train_gluon(net, net, small)
    prefix = tmp_path_factory.mktemp("plain") / "plain"
    net.export(str(prefix), epoch=1)
    return prefix, 1, "unit"


def module_outputs(prefix: Path, epoch: int, x: np.ndarray, names: list[str] | None = None) -> list[np.ndarray]:
    """MXNet's Module API on the saved files, at one batch of len(x): the model's output, or
    the named internal outputs of its own graph."""
    symbol, args, auxs = mx.model.load_checkpoint(str(prefix), epoch)
    if names is not None:
        internals = symbol.get_internals()
        symbol = mx.sym.Group([internals[f"{name}_output"] for name in names])
    labels = [name for name in symbol.list_arguments() if name.endswith("_label")]
    module = mx.mod.Module(symbol, data_names=["data"], label_names=labels or None, context=mx.cpu())
    module.bind(
        data_shapes=[("data", x.shape)], label_shapes=[(name, (len(x),)) for name in labels] or None, for_training=False
    )
    module.set_params(args, auxs)
    module.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    return [out.asnumpy() for out in module.get_outputs()]


def load(where, pixels: str | None = None) -> model.Network:
    return saved.load(saved.find(where), str(where), mx.cpu(), pixels)


KINDS = ["seed_model", "auto_model", "mynet_model", "plain_model"]


# -- the same numbers as MXNet's own Module API ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_equal_the_module_apis_own(kind, request, small, monkeypatch):
    prefix, epoch, pixels = request.getfixturevalue(kind)
    monkeypatch.setenv("MXNET_SUBGRAPH_BACKEND", "NONE")
    x = raw(small.test_x[:N]) if pixels == "raw" else unit(small.test_x[:N])
    (theirs,) = module_outputs(prefix, epoch, x)
    network = load(prefix, pixels)
    test = replace(small, test_x=small.test_x[:N], test_y=small.test_y[:N])
    evaluated = evaluation.score(predict.probabilities(network, test.test_x, mx.cpu()), test.test_y)  # one batch of 500
    assert evaluated.probabilities is not None
    if kind == "plain_model":  # ends at the scores: reportgen adds the softmax
        theirs = softmax(theirs.astype(np.float64), axis=1)
        np.testing.assert_allclose(evaluated.probabilities, theirs, rtol=1e-5, atol=1e-7)
    else:
        assert np.array_equal(evaluated.probabilities, theirs)
    assert np.array_equal(evaluated.predictions, theirs.argmax(axis=1))
    assert evaluated.overall.accuracy > 0.5  # trained: far from chance


@pytest.mark.parametrize(
    "kind, names", [("seed_model", SEED_NAMES), ("auto_model", AUTO_NAMES), ("plain_model", PLAIN_NAMES)]
)
def test_every_layer_equals_the_module_apis_internals(kind, names, request, small, monkeypatch):
    prefix, epoch, pixels = request.getfixturevalue(kind)
    network = load(prefix, pixels)
    assert network.record.names == dict(zip(LAYERS, names))
    cases = [0, 7, 18, 42, 99, 123, 321, 499]
    ours = inside.run(network, small.test_x, small.test_y, cases, mx.cpu()).outputs
    monkeypatch.setenv("MXNET_SUBGRAPH_BACKEND", "NONE")
    x = raw(small.test_x[cases]) if pixels == "raw" else unit(small.test_x[cases])
    present = [(layer, name) for layer, name in zip(LAYERS, names) if name]
    theirs = dict(zip([layer for layer, _ in present], module_outputs(prefix, epoch, x, [n for _, n in present])))
    for layer, values in theirs.items():
        assert np.array_equal(ours[layer], values), layer
    assert np.array_equal(ours["flat"], theirs["pool2"].reshape(len(cases), 800))
    np.testing.assert_allclose(ours["softm"], softmax(theirs["full2"].astype(np.float64), axis=1), rtol=1e-5, atol=1e-7)


def test_kernels_are_the_models_own_weights(seed_model):
    prefix, epoch, _ = seed_model
    _, args, _ = mx.model.load_checkpoint(str(prefix), epoch)
    network = load(prefix, "raw")
    assert network.kernels == {"conv1": "Conv1_weight", "conv2": "Conv2_weight"}
    kernels = inside.run(network, np.zeros((1, 28, 28), np.uint8), np.zeros(1), [0], mx.cpu()).kernels
    assert np.array_equal(kernels["conv1"], args["Conv1_weight"].asnumpy())
    assert np.array_equal(kernels["conv2"], args["Conv2_weight"].asnumpy())


def test_the_scaling_asked_for_is_the_one_fed(seed_model, small, monkeypatch):
    """Fed unit pixels, the seed's model gives what the Module API gives on x/255: another answer."""
    prefix, epoch, _ = seed_model
    monkeypatch.setenv("MXNET_SUBGRAPH_BACKEND", "NONE")
    images = small.test_x[:N]
    (on_unit,) = module_outputs(prefix, epoch, unit(images))
    (on_raw,) = module_outputs(prefix, epoch, raw(images))
    ours = predict.predict(load(prefix).forward, images, mx.cpu(), "unit", batch_size=N)
    assert np.array_equal(ours, on_unit)
    assert (on_unit.argmax(1) != on_raw.argmax(1)).any()


# -- finding the files -------------------------------------------------------------------------


def test_every_way_of_naming_a_model_finds_the_same_files(seed_model, tmp_path):
    prefix, _, _ = seed_model
    run = tmp_path / "run"
    shutil.copytree(prefix.parent, run / "model")
    symbol, params = run / "model" / "mnistModel-symbol.json", run / "model" / "mnistModel-0001.params"
    for where in (run, run / "model", run / "model" / "mnistModel", symbol, params, run / "model" / "mnistModel-0001"):
        assert saved.find(where) == saved.Files(symbol, params, 1), where
    shutil.copyfile(params, run / "model" / "mnistModel-0012.params")
    assert saved.find(run / "model" / "mnistModel").epoch == 12  # the latest
    assert saved.find(symbol).params.name == "mnistModel-0012.params"
    assert saved.find(params).epoch == 1  # the one named


def test_bad_paths_are_refused_with_what_to_do(seed_model, mynet_model, tmp_path):
    (seed, _, _), (mynet, _, _) = seed_model, mynet_model
    both = tmp_path / "both"
    shutil.copytree(seed.parent, both)
    for f in mynet.parent.iterdir():
        shutil.copy(f, both)
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(seed.parent / "mnistModel-0001.params", lone)
    shutil.copy(mynet.parent / "mynet-symbol.json", lone)
    (lone / "weights.params").write_bytes(b"")
    cases = {
        both: f"{both} holds 2 models (mnistModel, mynet): give one as {both / 'NAME'}",
        lone / "mnistModel-0001.params": "mnistModel-0001.params: no mnistModel-symbol.json beside it",
        lone / "mynet-symbol.json": "mynet-symbol.json: no mynet-NNNN.params beside it",
        lone: "mynet-symbol.json: no mynet-NNNN.params beside it",
        lone / "weights.params": "weights.params: not NAME-NNNN.params with an epoch number",
        tmp_path / "empty": f"{tmp_path / 'empty'}: no such file or folder",
        tmp_path / "nowhere" / "m": f"{tmp_path / 'nowhere' / 'm'}: no such file or folder",
        lone / "other": "nor a checkpoint prefix (no other-symbol.json)",
    }
    (tmp_path / "empty2").mkdir()
    cases[tmp_path / "empty2"] = f"{tmp_path / 'empty2'}: no model here"
    for where, message in cases.items():
        with pytest.raises(ModelError) as caught:
            saved.find(where)
        assert message in caught.value.format_message(), where


# -- matching by structure ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"act": "relu"}, "act1 ('Act1'): relu, expected tanh"),
        ({"filters": (20, 32)}, "conv2 ('Conv2'): 32 filters, expected 50"),
        ({"kernel": (3, 3)}, "conv1 ('Conv1'): kernel 3x3, expected 5x5"),
        ({"pool": "avg"}, "pool1 ('Pool1'): avg pooling, expected max"),
        ({"stride": False}, "pool1 ('Pool1'): stride 1x1, expected 2x2"),  # MXNet's default stride is 1
        ({"units": 256}, "full1 ('Full1'): 256 units, expected 500"),
        ({"extra": True}, "extra layer 'Extra' (convolution 3x3, 20 filters) before pool1"),
        (
            {"pool": None},
            "pool1: missing (max pooling 2x2, stride 2x2); 'Conv2' (convolution 5x5, 50 filters) comes next",
        ),
        ({"head": "log_softmax"}, "softm ('SoftM'): log_softmax, expected softmax"),
    ],
)
def test_another_network_is_refused_naming_the_first_difference(changes, message):
    with pytest.raises(ModelError) as caught:
        graph.match_text(seed_symbol(**changes).tojson(), "m-symbol.json")
    assert caught.value.format_message() == f"m-symbol.json: {message}"


def test_a_setting_that_is_not_a_number_is_refused_as_bad_input():
    def changed(op: str, key: str, value: str) -> str:
        graph_ = json.loads(seed_symbol(head="softmax").tojson())
        node = next(n for n in graph_["nodes"] if n["op"] == op)
        node.setdefault("attrs", {})[key] = value
        return json.dumps(graph_)

    assert graph.match_text(changed("Convolution", "num_filter", "20"), "m").names()["conv1"] == "Conv1"
    with pytest.raises(ModelError, match=r"m: conv1 \('Conv1'\): \(2,\.\) filters, expected 20"):
        graph.match_text(changed("Convolution", "num_filter", "(2,.)"), "m")
    with pytest.raises(ModelError, match=r"m: softm \('SoftM'\): unreadable setting"):
        graph.match_text(changed("softmax", "temperature", "warm"), "m")


def test_graphs_that_are_not_one_chain_are_refused():
    two = mx.sym.Group([seed_symbol(), seed_symbol(head="none")])
    with pytest.raises(ModelError, match=r"the graph has 2 outputs \(SoftM, Full2\), expected one"):
        graph.match_text(two.tojson(), "m")
    x = mx.sym.var("data")
    joined = mx.sym.elemwise_add(mx.sym.Activation(x, act_type="tanh"), mx.sym.sigmoid(x), name="join")
    with pytest.raises(ModelError, match="'join' \\(elemwise_add\\) joins 2 branches"):
        graph.match_text(joined.tojson(), "m")


def _variant(**kinds) -> mx.sym.Symbol:
    """The seed's chain with one thing done another acceptable way."""
    s = mx.sym.var(kinds.get("data", "data"))
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=20, name="c1")
    if kinds.get("dropout"):
        s = mx.sym.identity(mx.sym.Dropout(s, p=0.5, name="drop"), name="copy")
    s = mx.sym.tanh(s, name="a1") if kinds.get("tanh_op") else mx.sym.Activation(s, act_type="tanh", name="a1")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), pooling_convention="full", name="p1")
    s = mx.sym.Convolution(s, kernel=(5, 5), num_filter=50, name="c2")
    s = mx.sym.Activation(s, act_type="tanh", name="a2")
    s = mx.sym.Pooling(s, pool_type="max", kernel=(2, 2), stride=(2, 2), name="p2")
    s = mx.sym.Activation(mx.sym.FullyConnected(s, num_hidden=500, name="f1"), act_type="tanh", name="a3")
    s = mx.sym.FullyConnected(s, num_hidden=10, name="f2")
    head = kinds.get("head")
    return mx.sym.SoftmaxActivation(s, name="sm") if head == "activation" else mx.sym.softmax(s, axis=1, name="sm")


def test_acceptable_variations_are_matched():
    found = graph.match_text(_variant(dropout=True, tanh_op=True, data="image").tojson(), "m")
    assert found.data == "image" and found.head == "softmax"
    assert found.names() == dict(zip(LAYERS, ("c1", "a1", "p1", "c2", "a2", "p2", None, "f1", "a3", "f2", "sm")))
    assert found.skipped == ("drop (Dropout)", "copy (_copy)")
    assert graph.match_text(_variant(head="activation").tojson(), "m").head == "SoftmaxActivation"
    assert found.parameters()["f1_weight"] == ("full1", (500, 800))
    always = mx.sym.Dropout(mx.sym.var("data"), mode="always", name="drop")
    with pytest.raises(ModelError, match="conv1 \\('drop'\\): Dropout, expected convolution"):
        graph.match_text(always.tojson(), "m")


def test_a_model_ending_at_its_scores_gets_the_softmax_its_loss_applied(seed_model, tmp_path, small):
    prefix, epoch, _ = seed_model
    _, args, auxs = mx.model.load_checkpoint(str(prefix), epoch)
    mx.model.save_checkpoint(str(tmp_path / "logits"), 1, seed_symbol(head="none"), args, auxs)
    network = load(tmp_path / "logits", "raw")
    assert network.record.head == "" and network.record.names["softm"] is None
    outputs = inside.run(network, small.test_x, small.test_y, [0, 1], mx.cpu()).outputs
    np.testing.assert_allclose(outputs["softm"], softmax(outputs["full2"].astype(np.float64), axis=1), rtol=1e-6)
    same = inside.run(load(prefix, "raw"), small.test_x, small.test_y, [0, 1], mx.cpu()).outputs
    assert np.array_equal(outputs["softm"], same["softm"])


@pytest.mark.parametrize("key", ["attr", "param"])
def test_symbol_files_of_older_mxnet_versions_load(seed_model, tmp_path, small, key):
    """MXNet 0.9-0.12 kept operator settings under "attr", versions before 0.9 under "param"."""
    prefix, epoch, _ = seed_model
    body = json.loads(Path(f"{prefix}-symbol.json").read_text())
    for node in body["nodes"]:
        node[key] = node.pop("attrs", {})
        if key == "param":
            node["inputs"] = [edge[:2] for edge in node["inputs"]]
    body["attrs"] = {"mxnet_version": ["int", 1000 if key == "attr" else 800]}
    (tmp_path / "old-symbol.json").write_text(json.dumps(body))
    shutil.copyfile(f"{prefix}-0001.params", tmp_path / "old-0001.params")
    old, new = load(tmp_path / "old", "raw"), load(prefix, "raw")
    assert old.record.names == dict(zip(LAYERS, SEED_NAMES))
    images = small.test_x[:50]
    assert np.array_equal(
        predict.predict(old.forward, images, mx.cpu(), "raw"), predict.predict(new.forward, images, mx.cpu(), "raw")
    )


# -- the parameters ----------------------------------------------------------------------------


def test_parameters_are_checked_against_each_layer(seed_model, tmp_path, small):
    prefix, _, _ = seed_model
    good = mx.nd.load(f"{prefix}-0001.params")
    symbol = f"{prefix}-symbol.json"
    cases = {
        "three": (
            {**good, "arg:Conv1_weight": mx.nd.zeros((20, 3, 5, 5))},
            "'Conv1_weight' (conv1) is 20x3x5x5, expected 20x1x5x5",
        ),
        "missing": ({k: v for k, v in good.items() if k != "arg:Full2_bias"}, "no parameter 'Full2_bias' (full2)"),
        "list": (list(good.values()), "unnamed arrays, not a model's parameters"),
    }
    for name, (arrays, message) in cases.items():
        shutil.copyfile(symbol, tmp_path / f"{name}-symbol.json")
        mx.nd.save(str(tmp_path / f"{name}-0001.params"), arrays)
        with pytest.raises(ModelError, match=f"{name}-0001.params: ") as caught:
            load(tmp_path / name)
        assert message in caught.value.format_message()
    shutil.copyfile(symbol, tmp_path / "junk-symbol.json")
    (tmp_path / "junk-0001.params").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk-0001.params: cannot load the parameters"):
        load(tmp_path / "junk")
    # Bare names, float64 arrays and arrays the graph does not read are all fine.
    shutil.copyfile(symbol, tmp_path / "loose-symbol.json")
    loose = {k[4:]: v.astype("float64") for k, v in good.items()}
    mx.nd.save(str(tmp_path / "loose-0001.params"), {**loose, "momentum_Conv1": mx.nd.zeros(3)})
    images = small.test_x[:20]
    expected = predict.predict(load(prefix, "raw").forward, images, mx.cpu(), "raw")
    got = predict.predict(load(tmp_path / "loose", "raw").forward, images, mx.cpu(), "raw")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


# -- the pixel scaling -------------------------------------------------------------------------


def test_the_scaling_comes_from_the_note_the_option_or_the_default(seed_model, trained_run, tmp_path):
    prefix, _, _ = seed_model
    files = saved.find(prefix)
    assert saved.pixels_for(files, None) == ("unit", "default")
    assert saved.pixels_for(files, "raw") == ("raw", "option")
    own = saved.find(trained_run)  # trained by reportgen, on unit pixels: its note says so
    assert saved.pixels_for(own, None) == ("unit", "trained") == saved.pixels_for(own, "unit")
    with pytest.raises(ModelError, match="--pixels raw: reportgen trained this model on unit pixels"):
        saved.pixels_for(own, "raw")
    kept = saved.keep(files, tmp_path / "model", load(prefix, "raw").record)
    assert [p.name for p in kept] == ["mnistModel-symbol.json", "mnistModel-0001.params", "mnistModel-reportgen.json"]
    again = saved.find(tmp_path / "model")
    assert saved.pixels_for(again, None) == ("raw", "recorded")
    assert saved.pixels_for(again, "unit") == ("unit", "option")  # a choice, not a training: may change


# -- through the command line ------------------------------------------------------------------


def test_a_report_on_the_seeds_saved_model(seed_model, small, tmp_path, monkeypatch):
    prefix, epoch, _ = seed_model
    out = tmp_path / "report"
    args = ["build", "-q", "--model", str(prefix), "--pixels", "raw", "--test-limit", str(N), "--format", "html"]
    result = CliRunner().invoke(main, [*args, "--case", "worst", "--case", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["source"] == str(prefix) and manifest["model"]["epoch"] == 1
    assert manifest["model"]["pixels"] == "raw" and manifest["model"]["head"] == "SoftmaxOutput"
    assert manifest["model"]["names"] == dict(zip(LAYERS, SEED_NAMES))
    assert {"model/mnistModel-symbol.json", "model/mnistModel-0001.params", "model/mnistModel-reportgen.json"} <= set(
        manifest["files"]
    )
    # The confusion matrix of the Module API's own predictions, counted here.
    monkeypatch.setenv("MXNET_SUBGRAPH_BACKEND", "NONE")
    (theirs,) = module_outputs(prefix, epoch, raw(small.test_x[:N]))
    table = np.zeros((10, 10), np.int64)
    np.add.at(table, (theirs.argmax(1), small.test_y[:N]), 1)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == table.tolist()
    html = (out / "report.html").read_text()
    for shown in ("<code>Conv1</code>", "<code>SoftM</code>", "SoftmaxOutput", "raw, 0-255", "--pixels raw"):
        assert shown in html, shown
    with np.load(out / "inspection.npz") as inspected:
        assert inspected["indices"][1] == 3 and set(LAYERS) <= set(inspected.files)
    # The run folder keeps the model and how it was fed: no --pixels needed next time.
    again = tmp_path / "again"
    result = CliRunner().invoke(
        main, ["evaluate", "-q", "--model", str(out), "--test-limit", str(N), "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((again / "metrics.json").read_text()) == metrics
    assert json.loads((again / "manifest.json").read_text())["model"]["pixels_origin"] == "recorded"


def test_a_model_trained_elsewhere_is_not_given_a_training_it_did_not_have(seed_model, tmp_path):
    """The seed's Module checkpoint has no run record: the report, the manifest, the console
    and a site say its training is not known, rather than the data folder's 60,000 images or
    the file's epoch number."""
    prefix, _, _ = seed_model
    out, runner = tmp_path / "elsewhere", CliRunner()
    args = ["build", "--model", str(prefix), "--pixels", "raw", "--test-limit", str(N), "--format", "html,pdf"]
    result = runner.invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[1] == "how it was trained: not known (a model trained elsewhere)"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trained_on"] is None and manifest["training"] == {}
    text = " ".join(re.sub(r"<[^>]+>", " ", (out / "report.html").read_text()).split())
    for said in (
        "Training time not known (a model trained elsewhere)",
        "Training images not known (a model trained elsewhere)",
        "Not known (a model trained elsewhere).",  # the hyperparameters
        "What the model learned from is not known (a model trained elsewhere)",  # data
        "how it was trained is not known (a model trained elsewhere)",  # training
        "The data the model learned from is not known (a model trained elsewhere).",  # reproducibility
    ):
        assert said in text, said
    assert "60,000 of 60,000" not in text
    pdf = pypdf.PdfReader(out / "report.pdf")
    cover = " ".join(pdf.pages[0].extract_text().split())
    assert "training images not known (a model trained elsewhere)" in cover and "60,000" not in cover
    assert runner.invoke(main, ["site", "-q", str(out), "--out", str(tmp_path / "site")]).exit_code == 0
    (row,) = json.loads((tmp_path / "site" / "index.json").read_text())["runs"]
    assert (row["epochs"], row["training_seconds"], row["train_images"]) == (None, None, None)
    index = " ".join(re.sub(r"<[^>]+>", " ", (tmp_path / "site" / "index.html").read_text()).split())
    assert "not known (a model trained elsewhere)" in index and "1 epoch" not in index


def test_command_line_refusals(seed_model, trained_run, tmp_path):
    prefix, _, _ = seed_model
    mx.model.save_checkpoint(str(tmp_path / "wide"), 1, seed_symbol(filters=(20, 32)), {}, {})
    runner = CliRunner()
    cases = [
        (["build", "--model", str(tmp_path / "wide")], "wide-symbol.json: conv2 ('Conv2'): 32 filters, expected 50"),
        (["build", "--model", str(trained_run), "--pixels", "raw"], "reportgen trained this model on unit pixels"),
        (["build", "--pixels", "raw"], "--pixels raw: reportgen trains on unit pixels"),
        (["inspect", "--model", str(prefix), "--pixels", "half"], "'half' is not one of 'unit', 'raw'"),
    ]
    for args, message in cases:
        result = runner.invoke(main, [*args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()
