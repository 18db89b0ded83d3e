"""Initial parameters from a named scheme and a seed.

The same seed gives bit-identical parameters on every machine: NumPy's ``Generator`` on PCG64
draws in float64, which is then cast to the network's dtype. Biases start at zero.

- ``zeros``            W = 0
- ``uniform``          W ~ U(-1/sqrt(n_in), 1/sqrt(n_in))
- ``xavier_uniform``   W ~ U(-a, a), a = sqrt(6 / (n_in + n_out))        (Glorot and Bengio)
- ``xavier_normal``    W ~ N(0, s^2), s = sqrt(2 / (n_in + n_out))
- ``he_uniform``       W ~ U(-a, a), a = sqrt(6 / n_in)                  (He et al.)
- ``he_normal``        W ~ N(0, s^2), s = sqrt(2 / n_in)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from service.core.errors import CoreError
from service.core.network import Network
from service.core.parameters import LayerParams, Params

Scheme = Literal["zeros", "uniform", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)


def initialize(network: Network, scheme: Scheme, seed: int) -> Params:
    """Parameters for ``network`` drawn by ``scheme`` from a PCG64 generator seeded ``seed``."""
    if scheme not in SCHEMES:
        raise CoreError(
            f"unknown initialisation scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
            "/scheme",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise CoreError(f"the seed must be an integer in [0, 2**64), got {seed!r}", "/seed")
    rng = np.random.Generator(np.random.PCG64(seed))
    dtype = network.np_dtype
    layers: list[LayerParams] = []
    for n_in, n_out in network.shapes:
        shape = (n_in, n_out)
        match scheme:
            case "zeros":
                W = np.zeros(shape)
            case "uniform":
                W = _uniform(rng, 1 / math.sqrt(n_in), shape)
            case "xavier_uniform":
                W = _uniform(rng, math.sqrt(6 / (n_in + n_out)), shape)
            case "xavier_normal":
                W = rng.normal(0.0, math.sqrt(2 / (n_in + n_out)), shape)
            case "he_uniform":
                W = _uniform(rng, math.sqrt(6 / n_in), shape)
            case "he_normal":
                W = rng.normal(0.0, math.sqrt(2 / n_in), shape)
        layers.append(LayerParams(W.astype(dtype), np.zeros(n_out, dtype=dtype)))
    return tuple(layers)


def _uniform(rng: np.random.Generator, a: float, shape: tuple[int, int]) -> np.ndarray:
    return rng.uniform(-a, a, shape)
