"""The LeNet's structure, and its saved form: MXNet's export format, loaded back strictly."""

from __future__ import annotations

import json
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from reportgen import __version__, layers
from reportgen.errors import ModelError
from reportgen.net import model, saved


@pytest.fixture(scope="module")
def net():
    net = model.build(mx.cpu(), seed=7)
    net(mx.nd.zeros((1, 1, 28, 28)))  # shapes are inferred on the first forward pass
    return net


@pytest.fixture(scope="module")
def x():
    return mx.nd.array(np.random.default_rng(0).random((4, 1, 28, 28)), dtype="float32")


def test_every_layer_has_its_name_and_shape(net):
    symbol = net(mx.sym.var("data"))
    internals = symbol.get_internals()
    _, shapes, _ = internals.infer_shape(data=(2, 1, 28, 28))
    by_name = dict(zip(internals.list_outputs(), shapes))
    for layer in layers.LAYERS:
        assert by_name[model.output_name(layer)] == (2, *layers.SHAPES[layer])


def test_parameter_counts_match_the_arrays_and_the_hand_sum(net):
    actual = {layer: 0 for layer in layers.LAYERS}
    for name, param in net.collect_params().items():
        actual[name.split("_")[0]] += int(np.prod(param.shape))
    assert actual == layers.parameter_counts()
    # 20*25+20, 50*20*25+50, 800*500+500, 500*10+10
    assert sum(layers.parameter_counts().values()) == 520 + 25050 + 400500 + 5010 == 431080


def test_probabilities_are_softmax_of_logits(net, x):
    logits = net.logits(x).asnumpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(net(x).asnumpy(), expected, atol=1e-6)


def test_save_and_load_round_trip(net, x, tmp_path):
    files = model.save(net, tmp_path / "run" / "model", epoch=20)
    assert [f.name for f in files] == ["lenet-symbol.json", "lenet-0020.params", "lenet-reportgen.json"]
    for where in (tmp_path / "run", tmp_path / "run" / "model", tmp_path / "run" / "model" / "lenet"):
        loaded = saved.load(saved.find(where), str(where), mx.cpu())
        assert loaded.record.epoch == 20 and loaded.record.source == str(where)
        assert loaded.pixels == "unit" and loaded.record.pixels_origin == "trained"
        assert loaded.record.names == {}  # reportgen's own names: nothing to show beside them
        assert np.array_equal(loaded.forward(x).asnumpy(), net(x).asnumpy())


def test_a_saved_model_loads_with_plain_symbolblock_imports(net, x, tmp_path):
    model.save(net, tmp_path, epoch=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mxnet warns that 'data' has no declared type
        plain = mx.gluon.SymbolBlock.imports(
            str(tmp_path / "lenet-symbol.json"), ["data"], str(tmp_path / "lenet-0003.params")
        )
    assert np.array_equal(plain(x).asnumpy(), net(x).asnumpy())


def test_the_note_records_the_scaling_reportgen_trained_with(net, tmp_path):
    model.save(net, tmp_path, epoch=1)
    note = json.loads((tmp_path / "lenet-reportgen.json").read_text())
    assert note == {"pixels": "unit", "trained_by": f"reportgen {__version__}"}
    (tmp_path / "lenet-reportgen.json").write_text('{"pixels": "half"}')
    with pytest.raises(ModelError, match="lenet-reportgen.json: not a reportgen model note"):
        saved.load(saved.find(tmp_path), "m", mx.cpu())


def test_another_architecture_is_refused(tmp_path):
    other = nn.HybridSequential(prefix="")
    other.add(nn.Dense(10, prefix="full2_"))
    other.initialize()
    other.hybridize()
    other(mx.nd.zeros((1, 784)))
    other.export(str(tmp_path / "lenet"), epoch=1)
    with pytest.raises(
        ModelError, match=r"lenet-symbol.json: conv1 \('full2_fwd'\): fully connected, 10 units, expected"
    ):
        saved.load(saved.find(tmp_path), "m", mx.cpu())


def test_corrupt_files_are_refused(net, tmp_path):
    model.save(net, tmp_path, epoch=1)
    params = tmp_path / "lenet-0001.params"
    params.write_bytes(params.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot load the parameters") as caught:
        saved.load(saved.find(tmp_path), "m", mx.cpu())
    assert "\n" not in caught.value.format_message()
    (tmp_path / "lenet-symbol.json").write_text('{"nodes": [')
    with pytest.raises(ModelError, match="not an MXNet symbol file"):
        saved.load(saved.find(tmp_path), "m", mx.cpu())


def test_missing_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no model here"):
        saved.find(tmp_path)
    symbol = json.loads(model.LeNet()(mx.sym.var("data")).tojson())
    (tmp_path / "lenet-symbol.json").write_text(json.dumps(symbol))
    with pytest.raises(ModelError, match="no lenet-NNNN.params"):
        saved.find(tmp_path)
