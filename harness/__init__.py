"""harness: SO(3)-equivariance error analysis for spherical CNNs.

Four subpackages, each importing only those before it (tested in ``tests/test_layout.py``):

``util``     schema (one way to validate configs and arguments), memory (the size guard)
``sphere``   grids, Legendre tables, transforms, SO(3), Wigner matrices, rotation, field types
``nn``       the layers of a spherical CNN and models built from specs
``measure``  equivariance errors of any model, the Lie derivative, aliasing
``runs``     results on disk, the experiment runner, sweeps, datasets, training

then ``plots`` (seaborn figures from stored results; imported on demand, not here) and
``__main__`` (the CLI). The public API is re-exported here.
"""

from ._version import __version__
from .measure.aliasing import aliasing, model_aliasing
from .measure.equivariance import assert_equivariant, equivariance_error, random_signals
from .measure.lie import lie_derivative
from .nn.layers import InvariantDescriptor, Pointwise, SpectralPool, SphericalConv
from .nn.models import PRESETS, SphericalModel, build_model
from .runs.results import load_results
from .runs.sweeps import load_config, run_sweep
from .sphere.fields import FRAMES, Field, Invariant, Irreps, S2Coeffs, S2Grid
from .sphere.grids import GRID_KINDS, Grid, grid
from .sphere.resample import rotate
from .sphere.so3 import (euler_zyz_to_matrix, matrix_to_euler_zyz, matrix_to_quaternion, quaternion_to_matrix,
                         random_rotations)
from .sphere.transforms import BACKENDS, degree_norms, isft, resize_coefficients, sft
from .sphere.wigner import rotate_coefficients, wigner_D

__all__ = [
    # the sphere and SO(3)
    "GRID_KINDS", "Grid", "grid", "BACKENDS", "sft", "isft", "resize_coefficients", "degree_norms",
    "random_rotations", "euler_zyz_to_matrix", "matrix_to_euler_zyz", "matrix_to_quaternion", "quaternion_to_matrix",
    "wigner_D", "rotate_coefficients", "rotate", "Field", "S2Grid", "S2Coeffs", "Irreps", "Invariant", "FRAMES",
    # layers and models
    "SphericalConv", "Pointwise", "SpectralPool", "InvariantDescriptor", "build_model", "SphericalModel", "PRESETS",
    # measurement
    "random_signals", "equivariance_error", "assert_equivariant", "lie_derivative", "aliasing", "model_aliasing",
    # runs
    "load_results", "load_config", "run_sweep",
    "__version__",
]
