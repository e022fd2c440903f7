"""Files from outside, tried as an attacker would (issue 17): IDX and gzip, a --model's symbol
and parameters, a --baseline's predictions.npz, a run's JSON and .npz files, an --out that is
a dangling link, a full disk. Each bad file is built here and given to the command line: exit
code 2, one `error:` line naming the file, no traceback, and the previous run untouched.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from conftest import digest, make_record, metrics_body, one_line_error

from reportgen import data
from reportgen.cli import main
from reportgen.errors import DataError, ReportgenError
from reportgen.run import files
from reportgen.run.record import manifest

QUICK = ["-q", "--epochs", "1", "--train-limit", "500", "--test-limit", "200"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished run, HTML only: what render, site and --baseline are given below, broken."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("built") / "run"
    result = CliRunner().invoke(main, ["build", *QUICK, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: a refusal must come before it."""
    from reportgen.pipeline import stages

    def train(*args, **kwargs):
        raise AssertionError("training started before the bad input was refused")

    monkeypatch.setattr(stages, "train", train)


def idx_header(type_code: int, *dims: int) -> bytes:
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


def relist(folder: Path) -> None:
    """Record the folder's files in its manifest again, as an attacker who edits a run would."""
    body = json.loads((folder / files.MANIFEST).read_text())
    body["files"] = files.file_table(folder)
    (folder / files.MANIFEST).write_text(json.dumps(body))


# -- IDX and gzip -----------------------------------------------------------------------------


def test_a_gzip_bomb_is_refused_from_its_header_with_bounded_memory(runner, mnist_copy, tmp_path):
    """3 MB of gzip whose header says 10 images and which inflates to 3 GB: refused after
    decompressing its header and 10 images, not the whole of it (6.4 GB and 22 s before)."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    parts = [bomb.compress(idx_header(0x08, 10, 28, 28))]
    zeros = bytes(1 << 20)
    parts += [bomb.compress(zeros) for _ in range(3000)]
    parts.append(bomb.flush())
    (mnist_copy / "train-images-idx3-ubyte").unlink()
    (mnist_copy / "train-images-idx3-ubyte.gz").write_bytes(b"".join(parts))
    assert (mnist_copy / "train-images-idx3-ubyte.gz").stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        result = runner.invoke(main, ["train", *QUICK, "--data-dir", str(mnist_copy), "--out", str(tmp_path / "out")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_line_error(result, "train-images-idx3-ubyte.gz: data after the last of 10 images")
    assert peak < 200 << 20, f"peak {peak >> 20} MiB"


@pytest.mark.parametrize(
    "name, payload, fragment",
    [
        ("t10k-images-idx3-ubyte", idx_header(0x08, 0, 28, 28), "t10k-images-idx3-ubyte: holds no images"),
        ("t10k-labels-idx1-ubyte", idx_header(0x08, 0), "t10k-labels-idx1-ubyte: holds no labels"),
        (
            "t10k-images-idx3-ubyte",
            idx_header(0x08, 2**32 - 1, 28, 28),
            "header says 4,294,967,295 images; reportgen reads at most 10,000,000",
        ),
        ("t10k-images-idx3-ubyte", idx_header(0x08, 5, 2**32 - 1, 2**32 - 1), "expected 28x28 unsigned-byte images"),
        ("t10k-images-idx3-ubyte", idx_header(0x0D, 5, 28, 28), "expected 28x28 unsigned-byte images, found >f4"),
        (
            "t10k-labels-idx1-ubyte",
            idx_header(0x08, 3) + b"\x01\x02\x03" + b"\x00" * 9,
            "9 bytes after the last of 3 labels",
        ),
    ],
    ids=["no images", "no labels", "4 billion images", "4 billion squared pixels", "float images", "trailing"],
)
def test_bad_idx_headers_are_refused_before_reading(runner, mnist_copy, tmp_path, name, payload, fragment):
    (mnist_copy / name).write_bytes(payload)
    result = runner.invoke(main, ["train", *QUICK, "--data-dir", str(mnist_copy), "--out", str(tmp_path / "out")])
    one_line_error(result, fragment)


def test_dimensions_whose_product_overflows_are_refused(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_header(0x0E, 2**20, 2**32 - 1, 2**32 - 1) + b"\x00" * 64)  # 2**87 bytes
    with pytest.raises(DataError, match="more than reportgen reads"):
        data.read_idx(path)


def test_gzip_data_after_the_last_image_is_refused(runner, mnist_copy, tmp_path):
    labels = mnist_copy / "t10k-labels-idx1-ubyte"
    packed = gzip.compress(labels.read_bytes()) + gzip.compress(b"\x01" * 100)  # a second member
    labels.unlink()
    (mnist_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(packed)
    result = runner.invoke(main, ["train", *QUICK, "--data-dir", str(mnist_copy), "--out", str(tmp_path / "out")])
    one_line_error(result, "t10k-labels-idx1-ubyte.gz: data after the last of 10000 labels")


def test_gzip_members_and_padding_are_read_as_gzip_reads_them(tmp_path):
    array = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    raw = idx_header(0x08, 5, 28, 28) + array.tobytes()
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw[:10]) + b"\0" * 7 + gzip.compress(raw[10:2000]) + gzip.compress(raw[2000:]))
    assert gzip.decompress(path.read_bytes()) == raw  # Python's own reader agrees
    got, _ = data.read_idx(path, "images")
    assert np.array_equal(got, array)


def test_a_gzip_name_field_of_many_megabytes_is_refused(tmp_path):
    """A header whose name field never ends: gzip.GzipFile read it a byte at a time in Python
    (7 s for 20 MB here); zlib reads it in C."""
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x08" + bytes(6) + b"A" * (20 << 20))
    with pytest.raises(DataError, match="not a readable gzip file"):
        data.read_idx(path, "images")


# -- a --model's symbol file and parameters ---------------------------------------------------


@pytest.fixture
def model(trained_run, tmp_path) -> Path:
    """A copy of a trained run's model/ folder, to break."""
    folder = tmp_path / "model"
    shutil.copytree(trained_run / "model", folder)
    return folder


def evaluate(runner, model: Path, tmp_path: Path):
    return runner.invoke(main, ["evaluate", "-q", "--model", str(model), "--out", str(tmp_path / "out")])


def changed_symbol(model: Path, change) -> None:
    symbol = model / "lenet-symbol.json"
    body = json.loads(symbol.read_text())
    change(body)
    symbol.write_text(json.dumps(body))


def softmax(body: dict) -> dict:
    return next(node for node in body["nodes"] if node["op"] == "softmax")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda b: softmax(b).setdefault("attrs", {}).update(temperature="1" * 5000), "with temperature 111"),
        (lambda b: softmax(b).update(op="log_softmax", name="x\nerror: fake"), "'x\\nerror: fake'"),
        (lambda b: softmax(b).setdefault("attrs", {}).update(axis="9" * 400), "unreadable setting"),
        (lambda b: softmax(b).setdefault("attrs", {}).update(axis={"x": 1}), "expected a setting, found dict"),
        (lambda b: softmax(b).update(name=5), "name: expected a string, found 5"),
        (lambda b: b.update(nodes={"0": b["nodes"][0]}), "nodes: expected an array"),
        (lambda b: b.update(heads=[[10**9, 0, 0]]), "heads[0][0]: expected an integer in [0, "),
        (lambda b: softmax(b).update(inputs=[["0", 0, 0]]), "expected an integer"),
        (lambda b: b["nodes"].__setitem__(0, [1, 2]), "nodes[0]: expected an object"),
    ],
)
def test_a_bad_symbol_file_is_refused(runner, model, tmp_path, change, fragment):
    changed_symbol(model, change)
    result = evaluate(runner, model, tmp_path)
    one_line_error(result, "lenet-symbol.json: ", fragment)
    assert len(result.stderr) < 1100  # a value from outside is cut, not echoed whole


def test_a_symbol_file_nested_200000_deep_is_refused(runner, model, tmp_path):
    (model / "lenet-symbol.json").write_text('{"nodes": ' + "[" * 200_000 + "]" * 200_000 + "}")
    one_line_error(evaluate(runner, model, tmp_path), "lenet-symbol.json: not readable JSON (nested too deep)")
    (model / "lenet-symbol.json").write_text('{"nodes": ' + "[" * 20 + "]" * 20 + ', "heads": []}')
    one_line_error(evaluate(runner, model, tmp_path), "nested deeper than 8 levels")


def test_a_huge_symbol_file_is_refused_before_it_is_read(runner, model, tmp_path):
    with open(model / "lenet-symbol.json", "r+b") as f:
        f.truncate(1 << 30)  # a sparse gigabyte: refused from its size
    one_line_error(evaluate(runner, model, tmp_path), "lenet-symbol.json: larger than 16 MiB")


def saved_params(model: Path, arrays: dict[str, mx.nd.NDArray]) -> None:
    mx.nd.save(str(model / "lenet-0001.params"), arrays)


@pytest.mark.parametrize(
    "value, fragment",
    [(np.nan, "'conv1_weight' (conv1) holds nan"), (np.inf, "'conv1_weight' (conv1) holds inf")],
)
def test_weights_that_are_not_finite_are_refused_naming_the_parameter(runner, model, tmp_path, value, fragment):
    arrays = mx.nd.load(str(model / "lenet-0001.params"))
    weight = arrays["arg:conv1_weight"].asnumpy()
    weight[3, 0, 2, 2] = value
    saved_params(model, {**arrays, "arg:conv1_weight": mx.nd.array(weight)})
    one_line_error(evaluate(runner, model, tmp_path), "lenet-0001.params: ", fragment)


def test_weights_of_another_type_are_refused(runner, model, tmp_path):
    arrays = mx.nd.load(str(model / "lenet-0001.params"))
    saved_params(model, {**arrays, "arg:full2_bias": arrays["arg:full2_bias"].astype("int32")})
    one_line_error(evaluate(runner, model, tmp_path), "'full2_bias' (full2) is int32, expected floating point")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda raw: raw[:16] + struct.pack("<Q", 2**60) + raw[24:], "1,152,921,504,606,846,976 arrays"),
        (lambda raw: raw[:24] + struct.pack("<I", 0xF993FACA) + raw[28:], "numpy shape semantics"),
        (lambda raw: raw[:28] + struct.pack("<i", 1) + raw[32:], "is sparse"),
        (lambda raw: raw[:32] + struct.pack("<iqqqq", 4, 2**40, 2**40, 1, 1) + raw[68:], "ends at byte"),
        (lambda raw: raw + b"\x00", "1 bytes after the last name"),
    ],
)
def test_a_parameters_file_whose_headers_lie_is_refused_before_allocating(runner, model, tmp_path, damage, fragment):
    params = model / "lenet-0001.params"
    params.write_bytes(damage(params.read_bytes()))
    one_line_error(evaluate(runner, model, tmp_path), "lenet-0001.params: cannot load the parameters", fragment)


# -- a --baseline's predictions.npz, refused before training ----------------------------------


def _predictions(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "predictions.npz") as npz:
        return {name: npz[name] for name in npz.files}


def _with(row: int, column: int, value: float):
    def change(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        probabilities = arrays["probabilities"].copy()
        probabilities[row, column] = value
        return {**arrays, "probabilities": probabilities}

    return change


def _halved(row: int):
    def change(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        probabilities = arrays["probabilities"].copy()
        probabilities[row] *= 0.5
        return {**arrays, "probabilities": probabilities}

    return change


@pytest.mark.parametrize(
    "change, fragment",
    [
        (_with(5, 3, np.nan), "probability nan for test image 5"),
        (_with(6, 3, np.inf), "probability inf for test image 6"),
        (_with(7, 3, -0.5), "probability -0.5 for test image 7"),
        (_halved(8), "the probabilities of test image 8 add up to 0.5"),
        (lambda a: {name: v[:0] for name, v in a.items()}, "holds no test image"),
        (lambda a: {**a, "labels": a["labels"].astype(object)}, "is not an array of numbers"),
        (lambda a: {**a, "probabilities": a["probabilities"][:, :9]}, "expected labels and predictions of n"),
    ],
)
def test_bad_baseline_predictions_are_refused_before_training(runner, run, tmp_path, no_training, change, fragment):
    baseline = tmp_path / "baseline"
    shutil.copytree(run, baseline)
    np.savez(baseline / "predictions.npz", **change(_predictions(run)))
    result = runner.invoke(main, ["build", *QUICK, "--baseline", str(baseline), "--out", str(tmp_path / "out")])
    one_line_error(result, "predictions.npz: ", fragment)
    assert not (tmp_path / "out").exists()


def test_a_baseline_of_other_labels_is_refused_before_training(runner, run, tmp_path, no_training):
    baseline = tmp_path / "baseline"
    shutil.copytree(run, baseline)
    arrays = _predictions(run)
    np.savez(baseline / "predictions.npz", **{**arrays, "labels": (arrays["labels"] + 1) % 10})
    result = runner.invoke(main, ["build", *QUICK, "--baseline", str(baseline), "--out", str(tmp_path / "out")])
    one_line_error(result, "holds other test labels than this run's")


def test_an_npy_header_that_lies_about_its_size_is_refused(tmp_path):
    from reportgen.run.evaluation import Predictions

    path = tmp_path / "predictions.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 10), }"
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        archive.writestr("probabilities.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        for name in ("labels", "predictions"):
            archive.writestr(f"{name}.npy", b"")
    with pytest.raises(DataError, match="does not fill its 0 bytes"):
        Predictions.load(path)


def test_an_npy_header_left_open_is_refused(tmp_path):
    """A header whose dict is never closed: numpy's parser raises tokenize.TokenError on it
    (found by test_fuzz), which must be one DataError like any other bad header."""
    from reportgen.run.evaluation import Predictions

    path = tmp_path / "predictions.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 10), "
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        archive.writestr("probabilities.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(DataError, match="unreadable .npy header"):
        Predictions.load(path)


def test_an_npz_of_many_members_is_refused(tmp_path):
    from reportgen.run.inspection import Inspection

    path = tmp_path / "inspection.npz"
    np.savez(path, **{f"a{i}": np.zeros(1) for i in range(100)})
    with pytest.raises(DataError, match="100 members"):
        Inspection.load(path)


# -- a run's own files, given to render -------------------------------------------------------


def render(runner, folder: Path):
    return runner.invoke(main, ["render", "-q", str(folder), "--format", "html"])


@pytest.mark.parametrize(
    "name, change, fragment",
    [
        ("metrics.json", lambda b: b["overall"].update(accuracy="x"), "overall.accuracy: expected a number"),
        ("metrics.json", lambda b: b["overall"].update(accuracy=[1]), "overall.accuracy: expected a number"),
        ("metrics.json", lambda b: b["overall"].update(accuracy=1.5), "expected a number in [0, 1]"),
        ("metrics.json", lambda b: b["worst_pair"].update(indices=[10**9]), "worst_pair.indices[0]"),
        ("metrics.json", lambda b: b.update(comparison=[1]), "comparison: expected an object"),
        ("history.json", lambda b: b["batches"][0].update(loss="abc"), "batches[0].loss: expected a number"),
        ("manifest.json", lambda b: b["timings"].update(train="abc"), "timings.train: expected a number"),
        ("manifest.json", lambda b: b["model"].update(source=5), "model.source: expected a string, found 5"),
        ("manifest.json", lambda b: b.update(created="9999-12-31T23:59:59-23:59"), "not an ISO 8601 time"),
        ("manifest.json", lambda b: b["data"].update(test_images=-1), "data.test_images: expected an integer"),
    ],
)
def test_a_run_file_of_the_wrong_shape_is_refused_and_the_run_kept(runner, copy, name, change, fragment):
    body = json.loads((copy / name).read_text())
    change(body)
    (copy / name).write_text(json.dumps(body))
    if name != files.MANIFEST:
        relist(copy)
    before = digest(copy)
    one_line_error(render(runner, copy), f"{copy / name}: ", fragment)
    assert digest(copy) == before
    assert not [p for p in copy.parent.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"n_test": 1e400}', "number 1e400 is too large"),
        ('{"n_test": NaN}', "NaN is not JSON"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deep"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested deeper than 32 levels"),
        ("[1, 2]", "not a JSON object but list"),
        ('{"n_test": 1' + "0" * 5000 + "}", "not readable JSON"),
    ],
)
def test_json_that_python_reads_but_reportgen_writes_no_such_is_refused(runner, copy, text, fragment):
    (copy / "metrics.json").write_text(text)
    relist(copy)
    one_line_error(render(runner, copy), "metrics.json: ", fragment)


@pytest.mark.parametrize("name, limit", [("history.json", 64), ("metrics.json", 16)])
def test_a_huge_json_file_is_refused_before_it_is_read(runner, copy, name, limit):
    with open(copy / name, "r+b") as f:
        f.truncate((limit << 20) + 1)  # sparse: no disk, and refused from its size
    relist(copy)
    one_line_error(render(runner, copy), f"{name}: larger than {limit} MiB")


def test_a_fifo_or_a_device_is_refused_rather_than_waited_on(tmp_path):
    """open() of a FIFO waits for a writer, and /dev/zero never ends: neither is read."""
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ReportgenError, match="not a regular file"):
            files.read_json(path)


def test_inspection_npz_with_nan_is_refused(runner, copy):
    with np.load(copy / "inspection.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["act2"][0, 1, 2, 3] = np.nan
    files.write_npz(copy / "inspection.npz", arrays)
    relist(copy)
    one_line_error(render(runner, copy), "inspection.npz: array 'act2' holds NaN or an infinity")


# -- site: runs made by hand, and the site folder's own index.json ----------------------------


def fake_run(folder: Path, metrics: dict | None = None, **record) -> Path:
    files.write_json(folder / "metrics.json", metrics or metrics_body())
    files.write_bytes(folder / "report.html", b"<!DOCTYPE html><title>run</title>\n")
    files.write_json(folder / files.MANIFEST, manifest(make_record(**record), files.file_table(folder)))
    return folder


def edited(folder: Path, name: str, change) -> Path:
    body = json.loads((folder / name).read_text())
    change(body)
    (folder / name).write_text(json.dumps(body))
    if name != files.MANIFEST:
        relist(folder)
    return folder


@pytest.mark.parametrize(
    "name, change, fragment",
    [
        ("metrics.json", lambda b: b["overall"].update(accuracy="x"), "overall.accuracy: expected a number"),
        ("metrics.json", lambda b: b["overall"].update(accuracy=[0.9]), "overall.accuracy: expected a number"),
        ("metrics.json", lambda b: b.update(gates=[{"name": 1}]), "gates[0].name: expected a string"),
        ("manifest.json", lambda b: b["timings"].update(train="abc"), "timings.train: expected a number"),
        ("manifest.json", lambda b: b.update(created="9999-12-31T23:59:59-23:59"), "not an ISO 8601 time"),
        ("manifest.json", lambda b: b["model"].update(source=5), "model.source: expected a string"),
        ("manifest.json", lambda b: b.update(contexts="cpu"), "contexts: expected an array"),
    ],
)
def test_site_refuses_a_run_of_the_wrong_shape_and_writes_nothing(runner, tmp_path, name, change, fragment):
    good = fake_run(tmp_path / "in/good")
    bad = edited(fake_run(tmp_path / "in/bad"), name, change)
    result = runner.invoke(main, ["site", "-q", str(good), str(bad), "--out", str(tmp_path / "site")])
    one_line_error(result, f"{bad / name}: ", fragment)
    assert not (tmp_path / "site").exists()


def test_metrics_json_with_1e400_is_refused_by_site(runner, tmp_path):
    bad = fake_run(tmp_path / "in/bad")
    text = (bad / "metrics.json").read_text().replace('"accuracy": 0.9901', '"accuracy": 1e400', 1)
    (bad / "metrics.json").write_text(text)
    relist(bad)
    result = runner.invoke(main, ["site", "-q", str(bad), "--out", str(tmp_path / "site")])
    one_line_error(result, "metrics.json: not readable JSON (number 1e400 is too large)")


def test_an_index_json_cannot_point_the_clean_up_outside_the_site(runner, tmp_path):
    site = tmp_path / "site"
    assert runner.invoke(main, ["site", "-q", str(fake_run(tmp_path / "in/a")), "--out", str(site)]).exit_code == 0
    (tmp_path / "mine.txt").write_text("mine\n")
    index = json.loads((site / "index.json").read_text())
    index["files"] += ["../in", "../mine.txt", str(tmp_path / "mine.txt"), "..", ".", "", 5, ["runs"], "a\x00b"]
    (site / "index.json").write_text(json.dumps(index))
    assert runner.invoke(main, ["site", "-q", str(tmp_path / "in/a"), "--out", str(site)]).exit_code == 0
    assert (tmp_path / "mine.txt").read_text() == "mine\n" and (tmp_path / "in/a/metrics.json").is_file()


# -- --out, and a full disk --------------------------------------------------------------------


def test_an_out_that_is_a_dangling_link_is_refused_before_any_work(runner, tmp_path, no_training):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    result = runner.invoke(main, ["build", *QUICK, "--out", str(out)])
    one_line_error(result, f"{out}: a symbolic link to {tmp_path / 'gone'}, which does not exist")
    assert out.is_symlink() and not (tmp_path / "gone").exists()


def test_a_full_disk_is_one_line_naming_the_file_and_the_run_stays_whole(runner, copy, monkeypatch):
    """ENOSPC while render writes report.html: exit 2 (the machine's state, not a bug, and
    nothing reportgen can fix), the file named, the previous report and manifest untouched."""
    before = digest(copy)
    write_bytes = Path.write_bytes

    def full(self: Path, payload: bytes) -> int:
        if self.name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, payload)

    monkeypatch.setattr(Path, "write_bytes", full)
    result = render(runner, copy)
    one_line_error(result, "report.html: cannot write (No space left on device)")
    assert digest(copy) == before
    assert not [p for p in copy.parent.iterdir() if ".tmp-" in p.name]


def test_a_full_disk_anywhere_else_is_still_one_line(runner, tmp_path, monkeypatch):
    """A write no reportgen writer wraps (the site copying a run's file): the command line's
    own net catches ENOSPC, with the file when the error names it."""
    from reportgen.site import publish

    def full(path, payload):  # a write that bypasses files.write_bytes' own wrapping
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    run = fake_run(tmp_path / "in/a")
    monkeypatch.setattr(publish.files, "write_bytes", full)
    result = runner.invoke(main, ["site", "-q", str(run), "--out", str(tmp_path / "site")])
    one_line_error(result, "/runs/a/", ": cannot write (No space left on device)")
    assert not (tmp_path / "site").exists()


def test_an_earlier_manifest_carries_only_plain_entries_into_the_next(tmp_path):
    """`evaluate` into a run keeps the earlier manifest's entries for the files it leaves; a
    manifest from someone else cannot carry a path out of the run, or a made-up entry, into it."""
    from reportgen.run.record import write_manifest

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "lenet-0001.params").write_bytes(b"w")
    (tmp_path / "secret").write_text("s")
    kept = {"sha256": "a" * 64, "size": 1}
    earlier = {
        "model/lenet-0001.params": kept,
        "../secret": kept,  # a file outside the run, which exists
        "/etc/passwd": kept,
        "model/./lenet-0001.params": kept,
        "model/lenet-0001.params/": kept,
        "history.json": {"sha256": "not a digest"},
        "metrics.json": "anything",
    }
    (run / "manifest.json").write_text(json.dumps({**manifest(make_record(), {}), "files": earlier}))
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "metrics.json").write_text("{}")
    body = write_manifest(staged, make_record(), keep=run)
    assert set(body["files"]) == {"model/lenet-0001.params", "metrics.json"}
    assert body["files"]["model/lenet-0001.params"] == kept
    assert body["files"]["metrics.json"]["sha256"] == files.sha256(staged / "metrics.json")
