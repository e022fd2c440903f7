"""reportgen: a static report on a LeNet trained on MNIST with MXNet Gluon."""

from __future__ import annotations

__version__ = "0.1.0"
