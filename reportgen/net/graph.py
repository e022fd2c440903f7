"""What an MXNet symbol file computes, matched layer by layer to the seed's LeNet by its structure.

A model saved by Gluon's export, the Module API's save_checkpoint or R's mx.model.save names
its layers as its author did: Conv1 ... SoftM in the seed, convolution0 ... when nobody named
them, conv1_fwd ... in reportgen's own export. Names prove nothing; the operators and their
settings do. `match()` walks the graph from its single output back to the data input and checks
each operator against the eleven layers in order, refusing with the first layer that differs
and how.

No mxnet here: a symbol file is JSON. Operator settings are strings ("(5, 5)", "[5, 5]", "5",
"True", "1"), kept under "attrs" (MXNet >= 1.0), "attr" (0.9-0.12) or "param" (before 0.9).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reportgen.errors import ModelError, ReportgenError
from reportgen.layers import LAYERS, PARAMETER_SHAPES
from reportgen.run import schema
from reportgen.run.files import parse_json, read_bounded

# Operators that hand their input on unchanged at inference (Dropout unless mode="always").
PASS_THROUGH = frozenset({"_copy", "identity", "BlockGrad", "stop_gradient", "Dropout"})
# Heads whose forward pass is the softmax over the classes, but which need a label to bind.
TRAINING_HEADS = frozenset({"SoftmaxOutput", "Softmax"})  # Softmax: SoftmaxOutput's old name
_ACTIVATION_OPS = frozenset({"tanh", "relu", "sigmoid", "softsign", "log_sigmoid", "mish", "erf"})


@dataclass(frozen=True)
class Node:
    index: int
    op: str  # "null" for a variable (the input, a weight, a label)
    name: str
    attrs: dict[str, str]
    inputs: tuple[int, ...]  # the nodes it reads, in order


@dataclass(frozen=True)
class Matched:
    """One of reportgen's layers in the model's graph."""

    layer: str  # reportgen's name
    node: str | None  # the model's own name for it; None when the model has no node of its own
    op: str | None
    params: tuple[str, ...] = ()  # its weight and bias, as the model names them


@dataclass(frozen=True)
class Match:
    layers: tuple[Matched, ...]  # in LAYERS order
    data: str  # the name of the graph's input
    head: str  # the operator of the model's last layer; "" when the graph ends at full2's scores
    skipped: tuple[str, ...] = ()  # nodes passed over at inference, as "name (op)"

    def __getitem__(self, layer: str) -> Matched:
        return self.layers[LAYERS.index(layer)]

    def names(self) -> dict[str, str | None]:
        """reportgen's layer -> the model's own name for it (None where the model has none)."""
        return {m.layer: m.node for m in self.layers}

    def parameters(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """The model's name of each learned array -> (its layer, the shape it must have)."""
        expected = {}
        for layer, shapes in PARAMETER_SHAPES.items():
            for name, shape in zip(self[layer].params, shapes):
                expected[name] = (layer, shape)
        return expected


# -- reading the JSON ----------------------------------------------------------------------------


# A symbol file's bounds: the LeNet's is 5 KB of 20-odd nodes nested four deep.
MAX_BYTES = 16 << 20
MAX_NODES = 100_000
MAX_NESTING = 8


def _setting(value: object, where: str) -> str:
    """An operator setting as MXNet writes it: a string ("(5, 5)"); a plain number or true is
    taken as its text, anything else refused."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    raise schema.Invalid(f"{where}: expected a setting, found {type(value).__name__}")


def _edge(count: int) -> Callable[[object, str], int]:
    """A reader of an edge, [node, output, version]: the node it comes from, one of `count`."""

    def read(value: object, where: str) -> int:
        items = schema.array(value, where, most=3)
        if not items:
            raise schema.Invalid(f"{where}: an empty edge")
        return schema.integer(items[0], f"{where}[0]", 0, count - 1)

    return read


def _node(body: object, index: int, count: int) -> Node:
    where = f"nodes[{index}]"
    attrs: dict[str, str] = {}
    for key in ("param", "attr", "attrs"):
        settings = schema.obj(body, where).get(key)
        if isinstance(settings, dict):
            attrs.update({k: _setting(v, f"{where}.{key}.{k}") for k, v in settings.items()})
    return Node(
        index=index,
        op=schema.field(body, "op", where, schema.text),
        name=schema.field(body, "name", where, schema.text),
        attrs=attrs,
        inputs=tuple(schema.optional(body, "inputs", where, lambda v, w: schema.each(v, w, _edge(count)), [])),
    )


def parse(text: str | bytes, where: str) -> tuple[list[Node], list[int]]:
    """The nodes and the output nodes of a symbol file's text, of any MXNet version since 0.8;
    every value's type checked (a ModelError names the first that is wrong)."""
    try:
        graph = parse_json(text, where, MAX_NESTING)
    except ReportgenError as e:
        raise ModelError(f"{e.format_message()} (not an MXNet symbol file)") from e
    try:
        listed = schema.array(schema.get(graph, "nodes"), "nodes", most=MAX_NODES)
        nodes = [_node(body, i, len(listed)) for i, body in enumerate(listed)]
        heads = schema.each(schema.get(graph, "heads"), "heads", _edge(len(nodes)))
    except schema.Invalid as e:
        raise ModelError(f"{where}: not an MXNet symbol file ({e})") from e
    return nodes, heads


def _ints(text: str | None) -> tuple[int, ...]:
    """ "(5, 5)", "[5,5]", "5" -> (5, 5) or (5,); None, "None" and "()" -> (); a ValueError
    for a number too large to be a setting."""
    if text is None:
        return ()
    values = []
    for v in re.findall(r"-?[0-9]+(?:\.[0-9]+)?", text):
        number = float(v)
        if not abs(number) < 2**63:  # int() of an infinite float is an OverflowError
            raise ValueError(f"setting {v[:20]}... is too large")
        values.append(int(number))
    return tuple(values)


def _int(text: str | None, default: int) -> int:
    values = _ints(text)
    return values[0] if values else default


def _bool(text: str | None, default: bool) -> bool:
    return default if text is None else text.strip().lower() in ("1", "true")


def dims(shape: tuple[int, ...]) -> str:
    """(5, 5) -> "5x5"."""
    return "x".join(str(n) for n in shape) or "none"


# -- what each layer must be ---------------------------------------------------------------------

# reportgen's layer -> (kind, its number: filters or units).
SPEC: dict[str, tuple[str, int]] = {
    "conv1": ("conv", 20),
    "act1": ("act", 0),
    "pool1": ("pool", 0),
    "conv2": ("conv", 50),
    "act2": ("act", 0),
    "pool2": ("pool", 0),
    "flat": ("flat", 0),
    "full1": ("fc", 500),
    "act3": ("act", 0),
    "full2": ("fc", 10),
    "softm": ("softmax", 0),
}


def expected(layer: str) -> str:
    kind, number = SPEC[layer]
    return {
        "conv": f"convolution 5x5, {number} filters",
        "act": "tanh activation",
        "pool": "max pooling 2x2, stride 2x2",
        "flat": "flatten",
        "fc": f"fully connected, {number} units",
        "softmax": "softmax",
    }[kind]


def _activation(node: Node) -> str | None:
    if node.op == "Activation":
        return node.attrs.get("act_type", "?")
    if node.op == "LeakyReLU":
        kind = node.attrs.get("act_type", "leaky")
        return "leaky relu" if kind == "leaky" else kind
    return node.op if node.op in _ACTIVATION_OPS else None


def what(node: Node) -> str:
    """A node in a few words, for "comes next" and "extra layer" messages."""
    a = node.attrs
    if node.op == "Convolution":
        return f"convolution {dims(_ints(a.get('kernel')))}, {a.get('num_filter')} filters"
    if node.op == "Pooling":
        return f"{a.get('pool_type', 'max')} pooling {dims(_ints(a.get('kernel')))}"
    if node.op == "FullyConnected":
        flatten = "" if _bool(a.get("flatten"), True) else ", flatten=False"
        return f"fully connected, {a.get('num_hidden')} units{flatten}"
    activation = _activation(node)
    return f"{activation} activation" if activation else node.op


def _convolution(node: Node, filters: int) -> str | None:
    a = node.attrs
    if node.op != "Convolution":
        return f"{what(node)}, expected convolution"
    kernel = _ints(a.get("kernel"))
    if kernel != (5, 5):
        return f"kernel {dims(kernel)}, expected 5x5"
    if _int(a.get("num_filter"), 0) != filters:
        return f"{a.get('num_filter')} filters, expected {filters}"
    for key, default, label in (("stride", 1, "stride"), ("dilate", 1, "dilation"), ("pad", 0, "padding")):
        values = _ints(a.get(key))
        if any(v != default for v in values):
            return f"{label} {dims(values)}, expected {'1x1' if default else 'none'}"
    if _int(a.get("num_group"), 1) != 1:
        return f"{a['num_group']} groups, expected 1"
    if _bool(a.get("no_bias"), False):
        return "no bias, expected a bias"
    if a.get("layout", "None") not in ("None", "NCHW"):
        return f"layout {a['layout']}, expected NCHW"
    return None


def _tanh(node: Node, _: int) -> str | None:
    activation = _activation(node)
    if activation is None:
        return f"{what(node)}, expected tanh activation"
    return None if activation == "tanh" else f"{activation}, expected tanh"


def _pooling(node: Node, _: int) -> str | None:
    a = node.attrs
    if node.op != "Pooling":
        return f"{what(node)}, expected max pooling"
    if _bool(a.get("global_pool"), False):
        return "global pooling, expected max pooling 2x2"
    if a.get("pool_type", "max") != "max":
        return f"{a['pool_type']} pooling, expected max"
    kernel = _ints(a.get("kernel"))
    if kernel != (2, 2):
        return f"kernel {dims(kernel)}, expected 2x2"
    stride = _ints(a.get("stride")) or (1, 1)  # MXNet's default stride is 1
    if stride != (2, 2):
        return f"stride {dims(stride)}, expected 2x2"
    if any(_ints(a.get("pad"))):
        return f"padding {dims(_ints(a.get('pad')))}, expected none"
    # "full" rounds the output size up instead of down: the same on 24x24 and 8x8 maps.
    if a.get("pooling_convention", "valid") not in ("valid", "full"):
        return f"pooling convention {a['pooling_convention']}, expected valid"
    if a.get("layout", "None") not in ("None", "NCHW"):
        return f"layout {a['layout']}, expected NCHW"
    return None


def _flatten(node: Node, _: int) -> str | None:
    return None if node.op == "Flatten" else f"{what(node)}, expected flatten"


def _fully_connected(node: Node, units: int) -> str | None:
    if node.op != "FullyConnected":
        return f"{what(node)}, expected fully connected"
    if _int(node.attrs.get("num_hidden"), 0) != units:
        return f"{node.attrs.get('num_hidden')} units, expected {units}"
    if _bool(node.attrs.get("no_bias"), False):
        return "no bias, expected a bias"
    return None


def _softmax(node: Node, _: int) -> str | None:
    a = node.attrs
    if node.op in TRAINING_HEADS or node.op == "SoftmaxActivation":
        return None  # on (n, 10) scores each is the softmax over the classes
    if node.op != "softmax":
        return f"{what(node)}, expected softmax"
    if a.get("temperature", "None") not in ("None", "") and float(a["temperature"]) != 1.0:
        return f"softmax with temperature {a['temperature']}, expected 1"
    if _int(a.get("axis"), -1) not in (-1, 1):
        return f"softmax over axis {a['axis']}, expected the classes"
    if _bool(a.get("use_length"), False):
        return "softmax with lengths, expected a plain softmax"
    return None


CHECKS: dict[str, Callable[[Node, int], str | None]] = {
    "conv": _convolution,
    "act": _tanh,
    "pool": _pooling,
    "flat": _flatten,
    "fc": _fully_connected,
    "softmax": _softmax,
}


def difference(node: Node, layer: str) -> str | None:
    """None if `node` computes `layer`, else how it differs."""
    kind, number = SPEC[layer]
    return CHECKS[kind](node, number)


# -- the walk ------------------------------------------------------------------------------------


def _chain(nodes: list[Node], heads: list[int], where: str) -> tuple[list[Node], Node]:
    """The operators from the data input to the single output, in order, and the input."""
    if len(heads) != 1:
        names = ", ".join(nodes[h].name for h in heads)
        raise ModelError(f"{where}: the graph has {len(heads)} outputs ({names}), expected one")
    chain: list[Node] = []
    seen: set[int] = set()
    node = nodes[heads[0]]
    while node.op != "null":
        computed = [i for i in node.inputs if nodes[i].op != "null"]
        if len(computed) > 1:
            raise ModelError(
                f"{where}: '{node.name}' ({node.op}) joins {len(computed)} branches; the seed's LeNet is one chain"
            )
        if not node.inputs or node.index in seen:
            raise ModelError(f"{where}: '{node.name}' ({node.op}) has no data input")
        seen.add(node.index)
        chain.append(node)
        node = nodes[computed[0] if computed else node.inputs[0]]
    return chain[::-1], node


def _passes_through(node: Node) -> bool:
    return node.op in PASS_THROUGH and not (node.op == "Dropout" and node.attrs.get("mode") == "always")


def _params(nodes: list[Node], node: Node, layer: str, where: str) -> tuple[str, ...]:
    """The weight and bias a learned layer reads, by the model's names."""
    if layer not in PARAMETER_SHAPES:
        return ()
    params = tuple(nodes[i].name for i in node.inputs[1:] if nodes[i].op == "null")
    if len(params) != 2:
        raise ModelError(f"{where}: {layer} ('{node.name}'): {len(params)} stored arrays, expected a weight and a bias")
    return params


def _fits(ops: list[Node], j: int, i: int) -> bool:
    return j < len(ops) and i < len(LAYERS) and difference(ops[j], LAYERS[i]) is None


def _refusal(ops: list[Node], j: int, i: int, how: str) -> str:
    """Why ops[j] cannot be LAYERS[i]: an extra layer, a missing one, or the same layer otherwise."""
    node, layer = ops[j], LAYERS[i]
    if _fits(ops, j + 1, i):
        return f"extra layer '{node.name}' ({what(node)}) before {layer}"
    if _fits(ops, j, i + 1):
        return f"{layer}: missing ({expected(layer)}); '{node.name}' ({what(node)}) comes next"
    return f"{layer} ('{node.name}'): {how}"


def match_text(text: str | bytes, where: str) -> Match:
    """Match a symbol file's text to the eleven layers; a ModelError names the first difference.

    Two layers may have no node of their own: flat, when full1 flattens its input itself (as
    Gluon's Dense does, so its exports have no Flatten), and softm, when the graph ends at
    full2's scores (the softmax was left to the loss, as Gluon's usual training does).
    """
    nodes, heads = parse(text, where)
    try:
        return _match(nodes, heads, where)
    except ValueError as e:  # a setting that is not a number where MXNet writes one, met in a message
        raise ModelError(f"{where}: unreadable setting ({e})") from e


def _match(nodes: list[Node], heads: list[int], where: str) -> Match:
    chain, data = _chain(nodes, heads, where)
    ops = [n for n in chain if not _passes_through(n)]
    found: list[Matched] = []
    j = 0
    for i, layer in enumerate(LAYERS):
        if j == len(ops) and layer == "softm":
            found.append(Matched(layer, None, None))
            continue
        if j == len(ops):
            raise ModelError(f"{where}: {layer}: missing, the graph ends at '{(ops[-1] if ops else data).name}'")
        node = ops[j]
        if layer == "flat" and node.op == "FullyConnected" and _bool(node.attrs.get("flatten"), True):
            found.append(Matched(layer, None, None))
            continue
        try:
            how = difference(node, layer)
        except ValueError as e:  # a setting that is not a number where MXNet writes one
            raise ModelError(f"{where}: {layer} ('{node.name}'): unreadable setting ({e})") from e
        if how is not None:
            raise ModelError(f"{where}: {_refusal(ops, j, i, how)}")
        found.append(Matched(layer, node.name, node.op, _params(nodes, node, layer, where)))
        j += 1
    if j < len(ops):
        raise ModelError(f"{where}: extra layer '{ops[j].name}' ({what(ops[j])}) after softm")
    skipped = tuple(f"{n.name} ({n.op})" for n in chain if _passes_through(n))
    return Match(tuple(found), data.name, found[-1].op or "", skipped)


def match(symbol_file: Path) -> Match:
    """Match a symbol file (NAME-symbol.json) to the seed's LeNet; its size bounded first."""
    try:
        payload = read_bounded(Path(symbol_file), MAX_BYTES, "symbol file")
    except ReportgenError as e:
        raise ModelError(e.format_message()) from e
    return match_text(payload, str(symbol_file))
