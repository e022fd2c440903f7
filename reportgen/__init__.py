"""reportgen: a static report on a LeNet trained on MNIST with MXNet Gluon."""

from __future__ import annotations

from reportgen import runtime

__version__ = "0.1.0"

# Before anything imports mxnet or copies an array into it (runtime.py says why).
runtime.apply()
