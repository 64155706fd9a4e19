"""The model of Cohen et al. (2018), section 5.1: a stack of SO(3) correlations with random
filters, as measured by ``experiments/cohen2018.toml`` (the factory its ``[model]`` names).

``stack(bandwidth, depth, channels, activation)``: S^2 correlation (S^2 -> SO(3)) then
``depth - 1`` SO(3) correlations, all at the same bandwidth, each followed by ``activation``
("identity" for the linear stack) on the SOFT grid. Filters: the layers' own random
initialization (localized, He-scaled); no bias.
"""

from __future__ import annotations

import torch

import harness


def stack(bandwidth: int, depth: int, channels: int, activation: str) -> torch.nn.Module:
    layers: list[torch.nn.Module] = [harness.S2ToSO3Conv(channels, channels, bandwidth, bandwidth, kind="soft",
                                                         bias=False)]
    layers.append(harness.SO3Pointwise(activation))
    for _ in range(depth - 1):
        layers.append(harness.SO3Conv(channels, channels, bandwidth, bandwidth, bias=False))
        layers.append(harness.SO3Pointwise(activation))
    return torch.nn.Sequential(*layers)
