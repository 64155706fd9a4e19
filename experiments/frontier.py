"""The nonlinearity frontier (issue 13): each named nonlinearity alone, measured in float64.

``layer(bandwidth, nonlinearity, channels)``: a one-layer harness model holding
``harness.nn.models.NONLINEARITY_VARIANTS[nonlinearity]`` on the DH grid — the factory of
``experiments/frontier.toml`` (isolated equivariance error, Lie derivative, forward time).
"""

from __future__ import annotations

import copy

import torch

import harness
from harness.nn.models import NONLINEARITY_VARIANTS


def layer(bandwidth: int, nonlinearity: str, channels: int) -> torch.nn.Module:
    spec = {"in_channels": channels, "bandwidth": bandwidth, "kind": "dh",
            "layers": [copy.deepcopy(NONLINEARITY_VARIANTS[nonlinearity])]}
    return harness.build_model(spec)
