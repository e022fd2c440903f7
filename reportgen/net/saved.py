"""Models people already have: the files a --model path means, loaded into a Network.

--model takes a run folder, its model/ folder, a checkpoint prefix DIR/NAME (NAME-symbol.json
with the latest NAME-NNNN.params), NAME-symbol.json or NAME-NNNN.params: what Gluon's export,
the Module API's save_checkpoint and R's mx.model.save all write. The graph is matched to the
seed's LeNet by its structure (graph.py), whatever its layers are called; the parameters are
read by params.py (not MXNet's reader, which trusts the counts and shapes it reads) and checked
against each layer's shapes and for NaN and infinities. SymbolBlock.imports cannot be used: a
SoftmaxOutput head asks for its label ("Parameter 'SoftM_label' is missing").

Finding and matching a model only reads its files (no network is built until load()), so a
wrong --model is refused before any data is read or training starts. The module imports
model.py, and with it mxnet: the commands that load a model run one.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen.errors import ModelError, reason
from reportgen.layers import LAYERS, SHAPES
from reportgen.net import graph, model, params
from reportgen.run.files import MANIFEST, cannot_write
from reportgen.run.record import ModelRecord

if TYPE_CHECKING:
    import mxnet as mx

SYMBOL = "-symbol.json"
_PARAMS = re.compile(r"^(?P<name>.+)-(?P<epoch>[0-9]{4,})\.params$")  # R and Python write %04d


@dataclass(frozen=True)
class Files:
    """One saved model: its graph, the parameters chosen, their epoch."""

    symbol: Path  # DIR/NAME-symbol.json
    params: Path  # DIR/NAME-NNNN.params
    epoch: int

    @property
    def prefix(self) -> Path:
        """DIR/NAME, as save_checkpoint and mx.model.save take it."""
        return self.symbol.with_name(self.symbol.name.removesuffix(SYMBOL))

    def run_folder(self) -> Path | None:
        """The reportgen run folder around a model/ folder, whose history and settings a report shows."""
        folder = self.symbol.parent
        if folder.name == "model" and (folder.parent / MANIFEST).is_file():
            return folder.parent
        return None


# -- finding the files ---------------------------------------------------------------------------


def _epochs(folder: Path, name: str) -> dict[int, Path]:
    """NAME-NNNN.params files in a folder, by epoch."""
    found = {}
    for path in folder.iterdir():
        m = _PARAMS.match(path.name)
        if m and m["name"] == name and path.is_file():
            found[int(m["epoch"])] = path
    return found


def _latest(symbol: Path) -> Files:
    name = symbol.name.removesuffix(SYMBOL)
    epochs = _epochs(symbol.parent, name)
    if not epochs:
        raise ModelError(f"{symbol}: no {name}-NNNN.params beside it")
    return Files(symbol, epochs[max(epochs)], max(epochs))


def _in_folder(path: Path) -> Files:
    """The one model in a folder or in its model/ folder; with several, ask which."""
    bare: list[Path] = []
    for folder in (path, path / "model"):
        if not folder.is_dir():
            continue
        symbols = sorted(p for p in folder.iterdir() if p.name.endswith(SYMBOL) and p.is_file())
        complete = [s for s in symbols if _epochs(folder, s.name.removesuffix(SYMBOL))]
        if len(complete) == 1:
            return _latest(complete[0])
        if complete:
            names = ", ".join(s.name.removesuffix(SYMBOL) for s in complete)
            raise ModelError(f"{folder} holds {len(complete)} models ({names}): give one as {folder / 'NAME'}")
        bare += symbols
    if bare:
        _latest(bare[0])  # says which NAME-NNNN.params is missing
    raise ModelError(
        f"{path}: no model here (no NAME-symbol.json with a NAME-NNNN.params in {path} or {path / 'model'})"
    )


def _file(path: Path) -> Files:
    if path.name.endswith(SYMBOL):
        return _latest(path)
    m = _PARAMS.match(path.name)
    if m:
        symbol = path.with_name(m["name"] + SYMBOL)
        if not symbol.is_file():
            raise ModelError(f"{path}: no {symbol.name} beside it (the parameters alone do not say how layers connect)")
        return Files(symbol, path, int(m["epoch"]))
    if path.suffix == ".params":
        raise ModelError(
            f"{path}: not NAME-NNNN.params with an epoch number (a Gluon save_parameters file "
            "has no graph: save the network with HybridBlock.export)"
        )
    raise ModelError(f"{path}: neither a model folder, NAME-symbol.json nor NAME-NNNN.params")


def find(path: str | Path) -> Files:
    """The files `--model PATH` means: a run folder, its model/ folder, a prefix DIR/NAME,
    NAME-symbol.json or NAME-NNNN.params."""
    path = Path(path)
    if path.is_dir():
        return _in_folder(path)
    if path.is_file():
        return _file(path)
    symbol = path.with_name(path.name + SYMBOL)
    if symbol.is_file():
        return _latest(symbol)
    if path.with_name(path.name + ".params").is_file():  # DIR/NAME-NNNN without ".params"
        return _file(path.with_name(path.name + ".params"))
    if not path.parent.is_dir():
        raise ModelError(f"{path}: no such file or folder")
    raise ModelError(f"{path}: no such file or folder, nor a checkpoint prefix (no {symbol.name})")


# -- the pixel scaling ---------------------------------------------------------------------------


def pixels_for(files: Files, given: str | None) -> tuple[str, str]:
    """(scaling, where it came from) for this model: the note beside it, --pixels, or unit.

    --pixels overrides a scaling an earlier run recorded for a model from elsewhere, but not
    the one reportgen trained a model with: fed otherwise, its report would show a model that
    never existed.
    """
    note = model.read_note(files.prefix)
    if note is None:
        return (given, "option") if given else ("unit", "default")
    origin = "trained" if note.get("trained_by") else "recorded"
    if given is None or given == note["pixels"]:
        return note["pixels"], origin
    if origin == "trained":
        raise ModelError(
            f"--pixels {given}: reportgen trained this model on {note['pixels']} pixels "
            f"({model.note_path(files.prefix)}); leave out --pixels"
        )
    return given, "option"


def keep(files: Files, folder: Path, record: ModelRecord) -> list[Path]:
    """Copy the model's two files, under their own names, into a run's model/ folder, with a
    note of the scaling it was used with: fed the same way next time without --pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in (files.symbol, files.params):
        try:
            copied.append(Path(shutil.copyfile(source, folder / source.name)))
        except OSError as e:
            raise cannot_write(folder / source.name, e) from e
    note = model.write_note(folder / files.prefix.name, record.pixels, trained=record.pixels_origin == "trained")
    return [*copied, note]


# -- loading -------------------------------------------------------------------------------------


def parameters(files: Files, found: graph.Match) -> dict[str, np.ndarray]:
    """The parameters the graph reads, float32, each checked against its layer's shape and
    for NaN and infinities; without mxnet (params.py reads the file).

    Gluon's export, save_checkpoint and mx.model.save all prefix the names with "arg:" or
    "aux:"; bare names are accepted too, and arrays the graph does not read are left out.
    """
    stored, flags = params.read(files.params)
    named = {(key[4:] if key[:4] in ("arg:", "aux:") else key): key for key in stored}
    arrays = {}
    for name, (layer, shape) in found.parameters().items():
        if name not in named:
            raise ModelError(f"{files.params}: no parameter '{name}' ({layer})")
        value = stored[named[name]]
        if tuple(value.shape) != shape:
            raise ModelError(
                f"{files.params}: '{name}' ({layer}) is {graph.dims(tuple(value.shape))}, expected {graph.dims(shape)}"
            )
        if value.dtype.kind != "f" or flags[named[name]] == params.BFLOAT16:
            kind = "bfloat16" if flags[named[name]] == params.BFLOAT16 else str(value.dtype)
            raise ModelError(f"{files.params}: '{name}' ({layer}) is {kind}, expected floating point")
        finite = np.isfinite(value)
        if not finite.all():
            raise ModelError(
                f"{files.params}: '{name}' ({layer}) holds {value[~finite].flat[0]} (NaN or infinite weights)"
            )
        arrays[name] = value.astype(np.float32)
    return arrays


def _outputs(files: Files, found: graph.Match) -> dict[str, mx.sym.Symbol]:
    """Each layer's output in the model's own graph; flat and softm made where it has none."""
    import mxnet as mx

    try:
        symbol = mx.sym.load(str(files.symbol))
    except mx.base.MXNetError as e:
        raise ModelError(f"{files.symbol}: MXNet cannot read it ({reason(e)})") from e
    internals = symbol.get_internals()
    names = set(internals.list_outputs())
    outputs = {}
    for matched in found.layers:
        if matched.node is not None:
            if f"{matched.node}_output" not in names:
                raise ModelError(f"{files.symbol}: no output '{matched.node}_output' for {matched.layer}")
            outputs[matched.layer] = internals[f"{matched.node}_output"]
    if found["flat"].node is None:  # full1 flattens its own input: the same values, made visible
        outputs["flat"] = mx.sym.flatten(outputs["pool2"], name="reportgen_flat")
    if found["softm"].node is None or found.head in graph.TRAINING_HEADS:
        # SoftmaxOutput's forward pass is this softmax, bit for bit; it needs no label.
        outputs["softm"] = mx.sym.softmax(outputs["full2"], axis=-1, name="reportgen_softm")
    return outputs


def _check_shapes(files: Files, group: mx.sym.Symbol, data: str) -> None:
    import mxnet as mx

    try:
        _, shapes, _ = group.infer_shape(**{data: (1, 1, 28, 28)})
    except mx.base.MXNetError as e:
        raise ModelError(f"{files.symbol}: does not take 1x28x28 images ({reason(e)})") from e
    for layer, shape in zip(LAYERS, shapes):
        if tuple(shape[1:]) != SHAPES[layer]:
            raise ModelError(
                f"{files.symbol}: {layer} gives {graph.dims(shape[1:])}, expected {graph.dims(SHAPES[layer])}"
            )


def _own_names(found: graph.Match) -> dict[str, str | None]:
    """The model's names for the layers; {} when they are reportgen's own (its export's)."""
    names = found.names()
    return {} if names == {layer: f"{layer}_fwd" for layer in LAYERS} else names


def load(files: Files, source: str, ctx: mx.Context, pixels: str | None = None) -> model.Network:
    """The model in `files` as a Network on ctx; `source` is --model as typed, for the record."""
    import mxnet as mx

    found = graph.match(files.symbol)
    scaling, origin = pixels_for(files, pixels)
    arrays = {name: mx.nd.array(value, dtype="float32") for name, value in parameters(files, found).items()}
    outputs = _outputs(files, found)
    layers = mx.sym.Group([outputs[layer] for layer in LAYERS])
    _check_shapes(files, layers, found.data)
    forward = mx.gluon.SymbolBlock(outputs["softm"], mx.sym.var(found.data, dtype="float32"))
    shared = forward.collect_params()
    try:
        shared.load_dict(arrays, ctx=ctx, allow_missing=False, ignore_extra=False)
    except (mx.base.MXNetError, AssertionError, ValueError, RuntimeError) as e:
        raise ModelError(f"{files.params}: cannot load the parameters ({reason(e)})") from e
    forward.hybridize(static_alloc=True, static_shape=True)
    record = ModelRecord(
        source=source,
        epoch=files.epoch,
        pixels=scaling,
        pixels_origin=origin,
        files=(files.symbol.name, files.params.name),
        names=_own_names(found),
        head=found.head,
        skipped=found.skipped,
    )
    kernels = {layer: found[layer].params[0] for layer in ("conv1", "conv2")}
    return model.Network(forward, layers, found.data, shared, kernels, record)
