"""Every reader of outside bytes, fuzzed (Hypothesis): any byte string, and any mutation of a
valid document, gives a value or a ReportgenError (exit code 2, one line), never another
exception, within a memory bound (tracemalloc) and a time bound (each example's deadline).

The JSON documents are mutated from valid ones (a value replaced, nudged out of its range,
given another type, or a key removed) so that examples reach the checks deep inside a reader,
not only its first type check. The examples are the same on every run (conftest's profile).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import fake_attributions, fake_features, fake_inspection, make_history, make_record, metrics_body
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reportgen import data
from reportgen.errors import BAD_INPUT, ReportgenError, one_line
from reportgen.run import files, finished, inspection
from reportgen.run.evaluation import Evaluation, Predictions
from reportgen.run.explanation import ATTRIBUTION_ARRAYS, FEATURE_ARRAYS, Attributions, Features
from reportgen.run.history import History
from reportgen.run.inspection import Inspection
from reportgen.run.record import RunRecord, manifest
from reportgen.site import publish, runs

MEMORY = 64 << 20  # the most a reader may allocate on one of these small examples
EXAMPLES = settings(max_examples=60)


def outcome(read: Callable[[], Any]) -> Any:
    """What a reader gives: its value or its ReportgenError; anything else fails the test, as
    does a peak of allocations above MEMORY."""
    tracemalloc.start()
    try:
        try:
            value = read()
        except ReportgenError as e:
            value = e
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY, f"peak {peak >> 20} MiB"
    event("refused" if isinstance(value, ReportgenError) else "read")  # --hypothesis-show-statistics
    if isinstance(value, ReportgenError):
        assert value.exit_code == BAD_INPUT
        assert "\n" not in one_line(value.format_message())
    return value


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder the examples write their file into, each overwriting the last."""
    return tmp_path_factory.mktemp("fuzz")


# -- JSON: valid documents, mutated --------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([-1, 0, 1, 10, 1.5, -0.5, 2**63, 10**30, 1e308, "", "x", "9999-12-31T23:59:59-23:59"])
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
)


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON document, depth first."""
    found, stack = [], [value]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            found.append((node, key))
            stack.append(node[key])
    return found


@st.composite
def mutated(draw, valid: Any) -> Any:
    """A valid document with up to three of its values replaced, nudged or removed."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(0, 3))):
        places = _places(doc)
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        how = draw(st.sampled_from(["replace", "nudge", "remove"]))
        old = container[key]
        if how == "remove" and isinstance(container, dict):
            del container[key]
        elif how == "nudge" and isinstance(old, (int, float)) and not isinstance(old, bool):
            container[key] = draw(st.sampled_from([-old, old + 1, old * 1000, -1, 2.5, 10**20]))
        elif how == "nudge" and isinstance(old, list):
            container[key] = old[: draw(st.integers(0, len(old)))] + old[: draw(st.integers(0, 2))]
        else:
            container[key] = draw(VALUES)
    return doc


def as_text(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True)  # NaN and Infinity as Python writes them


def json_examples(valid: Any):
    """A mutated document as text, or any text at all."""
    return (
        mutated(valid).map(as_text) | st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
    )


def written(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


METRICS = {
    **metrics_body(),
    "comparison": {
        "baseline": "b",
        "baseline_accuracy": 0.99,
        "accuracy_difference": -0.001,
        "accuracy_difference_lower": -0.002,
        "accuracy_difference_upper": 0.0,
        "fixed": 3,
        "broken": 5,
        "mcnemar_exact_p_value": 0.7,
    },
    "gates": [{"name": "fail-under", "threshold": 0.98, "value": 0.99, "passed": True}],
}


@EXAMPLES
@given(text=json_examples(METRICS))
def test_metrics_json(folder, text):
    path = written(folder / "metrics.json", text)

    def read() -> Any:
        body = files.read_json(path)
        evaluation = Evaluation.from_json(body, str(path))
        runs.extras(body, str(path))
        finished._check_summary(body, str(path))
        return evaluation

    got = outcome(read)
    assert isinstance(got, (Evaluation, ReportgenError))


MANIFEST = manifest(make_record(), {"report.html": {"sha256": "0" * 64, "size": 10}})


@EXAMPLES
@given(text=json_examples(MANIFEST))
def test_manifest_json(folder, text):
    path = written(folder / "manifest.json", text)

    def read() -> RunRecord:
        record = RunRecord.from_json(files.read_json(path), str(path))
        runs.created_time(record.created, str(path)).timestamp()
        return record

    assert isinstance(outcome(read), (RunRecord, ReportgenError))


@EXAMPLES
@given(text=json_examples(make_history(epochs=2, batches=3).to_json()))
def test_history_json(folder, text):
    path = written(folder / "history.json", text)
    assert isinstance(outcome(lambda: History.load(path)), (History, ReportgenError))


INDEX = {"generator": "reportgen 0.1.0", "title": "t", "files": ["accuracy.svg", "index.html", "index.json", "runs"]}


@EXAMPLES
@given(text=json_examples(INDEX))
def test_index_json(folder, text):
    written(folder / "index.json", text)
    got = outcome(lambda: publish._earlier_site(folder))
    # Never an error (an unreadable index.json is no earlier site); plain names of the folder only.
    assert got is None or all(name and name == Path(name).name and name not in (".", "..") for name in got)


# -- a model's files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> tuple[str, bytes]:
    """An untrained LeNet exported as MXNet writes it: its symbol file's text, its parameters' bytes."""
    from reportgen.net import model

    folder = tmp_path_factory.mktemp("lenet")
    model.save(model.build(seed=1), folder, 1)
    return (folder / "lenet-symbol.json").read_text(), (folder / "lenet-0001.params").read_bytes()


@EXAMPLES
@given(examples=st.data())
def test_symbol_json(lenet, folder, examples):
    from reportgen.net import graph

    text = examples.draw(json_examples(json.loads(lenet[0])))
    path = written(folder / "m-symbol.json", text)
    assert isinstance(outcome(lambda: graph.match(path)), (graph.Match, ReportgenError))


@st.composite
def damaged(draw, valid: bytes) -> bytes:
    """Bytes of a valid file with up to four bytes or words overwritten, or bytes cut or added;
    its first 200 bytes (the headers) are hit most."""
    payload = bytearray(valid)
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(["overwrite", "word", "cut", "add"]))
        at = draw(st.integers(0, min(len(payload), 200) if draw(st.booleans()) else len(payload)))
        if how == "overwrite" and payload:
            payload[min(at, len(payload) - 1)] = draw(st.integers(0, 255))
        elif how == "word":
            payload[at : at + 8] = struct.pack("<q", draw(st.sampled_from([-1, 0, 1, 2**31, 2**40, 2**62, 0x112])))
        elif how == "cut":
            del payload[at : at + draw(st.integers(1, 64))]
        else:
            payload[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(payload)


@settings(max_examples=40)
@given(examples=st.data())
def test_params_file(lenet, folder, examples):
    from reportgen.net import graph, params, saved

    symbol = written(folder / "p-symbol.json", lenet[0])
    path = folder / "p-0001.params"
    path.write_bytes(examples.draw(damaged(lenet[1]) | st.binary(max_size=300)))

    def read() -> Any:
        params.read(path)
        return saved.parameters(saved.Files(symbol, path, 1), graph.match(symbol))

    assert isinstance(outcome(read), (dict, ReportgenError))


# -- .npz files -------------------------------------------------------------------------------

DTYPES = st.sampled_from(["<f4", "<f8", ">f4", "<f2", "<i8", "<i4", "u1", "?", "<c8", "<U3"])


@st.composite
def npz_bytes(draw, names: list[str]) -> bytes:
    """An .npz of arrays of any shape and type under the expected names and others."""
    chosen = draw(st.lists(st.sampled_from([*names, "extra"]), unique=True, max_size=len(names) + 1))
    arrays = {
        name: draw(hnp.arrays(np.dtype(draw(DTYPES)), hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)))
        for name in chosen
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays) if draw(st.booleans()) else np.savez(buffer, **arrays)
    return buffer.getvalue()


@st.composite
def prediction_files(draw) -> bytes:
    """predictions.npz as reportgen writes it, of a few images: a softmax's rows, or values of
    any kind."""
    n = draw(st.integers(0, 5))
    floats = st.floats(width=32) | st.sampled_from([0.0, 1.0, 0.5, 0.25])
    if draw(st.booleans()):
        logits = draw(hnp.arrays(np.float64, (n, 10), elements=st.floats(-30, 30)))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True)) if n else logits
        probabilities = (
            (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32) if n else np.zeros((0, 10), np.float32)
        )
    else:
        probabilities = draw(hnp.arrays(np.float32, (n, 10), elements=floats))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(-3, 12) | st.integers(0, 9)))
    predictions = probabilities.argmax(axis=1) if n and draw(st.booleans()) else labels
    buffer = io.BytesIO()
    files._write_npz(buffer, {"labels": labels, "predictions": predictions, "probabilities": probabilities})
    return buffer.getvalue()


def npz_examples(valid: st.SearchStrategy[bytes], names: list[str]) -> st.SearchStrategy[bytes]:
    return valid | npz_bytes(names) | valid.flatmap(damaged) | st.binary(max_size=300)


@EXAMPLES
@given(payload=npz_examples(prediction_files(), ["labels", "predictions", "probabilities"]))
def test_predictions_npz(folder, payload):
    path = folder / "predictions.npz"
    path.write_bytes(payload)
    assert isinstance(outcome(lambda: Predictions.load(path)), (Predictions, ReportgenError))


def _inspection_file() -> bytes:
    buffer = io.BytesIO()
    files._write_npz(buffer, fake_inspection(np.arange(10), 1).arrays())
    return buffer.getvalue()


@EXAMPLES
@given(payload=npz_examples(st.builds(_inspection_file), list(inspection.EXPECTED)))
def test_inspection_npz(folder, payload):
    path = folder / "inspection.npz"
    path.write_bytes(payload)
    assert isinstance(outcome(lambda: Inspection.load(path)), (Inspection, ReportgenError))


def _explanation_file(which: str) -> bytes:
    buffer = io.BytesIO()
    made = fake_attributions() if which == "attributions" else fake_features()
    files._write_npz(buffer, made.arrays())
    return buffer.getvalue()


@EXAMPLES
@given(payload=npz_examples(st.builds(_explanation_file, st.just("attributions")), list(ATTRIBUTION_ARRAYS)))
def test_attributions_npz(folder, payload):
    path = folder / "attributions.npz"
    path.write_bytes(payload)
    assert isinstance(outcome(lambda: Attributions.load(path, 100)), (Attributions, ReportgenError))


@EXAMPLES
@given(payload=npz_examples(st.builds(_explanation_file, st.just("features")), list(FEATURE_ARRAYS)))
def test_features_npz(folder, payload):
    path = folder / "features.npz"
    path.write_bytes(payload)
    assert isinstance(outcome(lambda: Features.load(path, 100)), (Features, ReportgenError))


def test_a_member_header_that_lies_is_refused_without_reading(folder):
    """A zip member whose declared size is a gigabyte of deflate: refused from the zip's directory."""
    path = folder / "lies.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", b"\x93NUMPY" + b"\0" * 100)
    raw = bytearray(path.read_bytes())
    directory = raw.rindex(b"PK\x01\x02")
    raw[directory + 24 : directory + 28] = struct.pack("<I", 1 << 30)  # its uncompressed size
    path.write_bytes(bytes(raw))
    with pytest.raises(ReportgenError, match="declares more bytes than its data can hold"):
        Predictions.load(path)


# -- IDX, raw and gzip ------------------------------------------------------------------------


@st.composite
def idx_bytes(draw) -> bytes:
    """An IDX file: a header of any type and dimensions (some huge), then a body of any length
    or of the length the header promises."""
    type_code = draw(st.just(0x08) | st.sampled_from([0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]))
    dims = draw(st.lists(st.integers(0, 30) | st.sampled_from([28, 2**31, 2**32 - 1]), max_size=4))
    if draw(st.booleans()):  # MNIST's shape: (n, 28, 28) or (n,)
        dims = [draw(st.integers(0, 3))] + [28, 28] * draw(st.booleans())
    header = struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    size = np.dtype(data._DTYPES[type_code]).itemsize if type_code in data._DTYPES else 1
    promised = size * int(np.prod(dims, dtype=object)) if dims else 0
    if promised <= 4000 and draw(st.booleans()):
        return header + draw(st.binary(min_size=promised, max_size=promised))
    return header + draw(st.binary(max_size=400))


@EXAMPLES
@given(
    payload=idx_bytes() | st.binary(max_size=100),
    packed=st.booleans(),
    kind=st.sampled_from(["images", "labels", "items"]),
)
def test_idx_files(folder, payload, packed, kind):
    path = folder / ("x-idx-ubyte.gz" if packed else "x-idx-ubyte")
    path.write_bytes(gzip.compress(payload) if packed else payload)
    got = outcome(lambda: data.read_idx(path, kind))
    assert isinstance(got, (tuple, ReportgenError))


@st.composite
def gzip_members(draw) -> bytes:
    """An IDX file as gzip allows it: cut into members at any point, zero bytes between them."""
    raw = draw(idx_bytes())
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=3)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    return b"".join(gzip.compress(piece) + b"\0" * draw(st.integers(0, 3)) for piece in pieces)


@EXAMPLES
@given(payload=(gzip_members() | idx_bytes().map(gzip.compress)).flatmap(damaged) | st.binary(max_size=200))
def test_damaged_gzip(folder, payload):
    path = folder / "x-idx-ubyte.gz"
    path.write_bytes(payload)
    assert isinstance(outcome(lambda: data.read_idx(path, "images")), (tuple, ReportgenError))
