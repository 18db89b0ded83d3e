"""backprop-service: the mathematics of neural networks over HTTP."""

__version__ = "0.1.0"
