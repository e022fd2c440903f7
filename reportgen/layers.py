"""The eleven layers of the seed's LeNet as facts: names, kinds, shapes, parameter counts and
how to read each one. No mxnet here: the figures and the report need these facts, not the
network (model.py holds the network itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LAYERS = ("conv1", "act1", "pool1", "conv2", "act2", "pool2", "flat", "full1", "act3", "full2", "softm")

# Per-image output shape of each layer, for a 1x28x28 input.
SHAPES: dict[str, tuple[int, ...]] = {
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

KINDS = {
    "conv1": "Convolution 5x5, 20 filters",
    "act1": "tanh",
    "pool1": "Max pooling 2x2, stride 2",
    "conv2": "Convolution 5x5, 50 filters",
    "act2": "tanh",
    "pool2": "Max pooling 2x2, stride 2",
    "flat": "Flatten",
    "full1": "Fully connected, 500",
    "act3": "tanh",
    "full2": "Fully connected, 10",
    "softm": "Softmax",
}

# The convolution kernels the report draws, with their shapes (filters, inputs, height, width).
KERNEL_SHAPES = {"conv1": (20, 1, 5, 5), "conv2": (50, 20, 5, 5)}

# Each learned layer's weight and bias shapes, in MXNet's order (a fully connected weight is
# units x inputs): what a saved model's parameters must hold.
PARAMETER_SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "conv1": (KERNEL_SHAPES["conv1"], (20,)),
    "conv2": (KERNEL_SHAPES["conv2"], (50,)),
    "full1": ((500, 800), (500,)),
    "full2": ((10, 500), (10,)),
}

# Layers whose values lie in [-1, 1]: tanh outputs and what only moves them around.
TANH_RANGE = frozenset({"act1", "pool1", "act2", "pool2", "flat", "act3"})

SATURATION = 0.99  # |x| above this counts as a saturated tanh unit

# How to read each layer's output, one explanation per layer, shown beside its figure.
READING = {
    "conv1": "Twenty 24 × 24 maps, one per conv1 kernel: each is large where the digit's strokes "
    "match that kernel's pattern (red) or its opposite (blue), so most act as edge or "
    "stroke detectors.",
    "act1": "The same maps through tanh: values squeezed into (−1, 1); strong responses flatten "
    "out near ±1 (saturated units, dark red or blue).",
    "pool1": "The largest value in each 2 × 2 block of act1: the same maps at half the size, "
    "12 × 12, the strongest responses kept and small shifts of the pen forgiven.",
    "conv2": "Fifty 8 × 8 maps, each summing 5 × 5 windows of all twenty pool1 maps through its "
    "own kernels: responses to combinations of strokes rather than single strokes.",
    "act2": "tanh again: dark red and blue units are the features conv2 finds clearly; maps pinned "
    "at ±1 everywhere are saturated.",
    "pool2": "Fifty 4 × 4 maps: the coarse positions of fifty features, all the network keeps of "
    "the image (800 numbers) before the fully connected layers.",
    "flat": "The fifty 4 × 4 maps of pool2 laid side by side as 800 numbers: column = map, rows = "
    "its 16 positions in reading order; a new shape, no computation.",
    "full1": "500 weighted sums of the 800 flat values, 50 units per row: the features the "
    "classifier works from, before tanh.",
    "act3": "tanh of the 500 sums; units at ±1 are saturated and would barely change for a slightly different digit.",
    "full2": "Ten scores (logits), one per digit, each a weighted sum of the 500 act3 features: "
    "the largest wins, and its lead over the runner-up is the network's margin.",
    "softm": "Softmax turns the ten scores into probabilities that sum to 1: the predicted "
    "digit's bar, and any rival's, read directly.",
}


def parameter_counts() -> dict[str, int]:
    """Trainable parameters per layer (0 for layers without any)."""
    counts = {layer: 0 for layer in LAYERS}
    for layer, shapes in PARAMETER_SHAPES.items():
        counts[layer] = sum(math.prod(shape) for shape in shapes)
    return counts


def size(layer: str) -> int:
    """Values in one image's output of `layer`."""
    return math.prod(SHAPES[layer])


def format_shape(shape: Sequence[int]) -> str:
    """(20, 24, 24) -> "20 × 24 × 24"."""
    return " \u00d7 ".join(str(n) for n in shape)
