"""harness: SO(3)-equivariance error analysis for spherical CNNs.

Four subpackages, each importing only those before it (tested in ``tests/test_layout.py``):

``util``     schema (one way to validate configs and arguments), memory (the size guard)
``sphere``   grids, Legendre tables, transforms, SO(3), Wigner matrices, rotation, SO(3) transforms, field types
``nn``       the layers of spherical CNNs (S^2: Esteves et al.; SO(3): Cohen et al.) and models from specs
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
from .nn.so3_layers import S2ToSO3Conv, SO3Conv, SO3Descriptor, SO3Integrate, SO3Pointwise, SO3Pool
from .runs.results import load_results
from .runs.sweeps import load_config, run_sweep
from .sphere.fields import FRAMES, Field, Invariant, Irreps, Representation, S2Coeffs, S2Grid, SO3Grid
from .sphere.grids import GRID_KINDS, Grid, grid
from .sphere.resample import rotate
from .sphere.so3 import (euler_zyz_to_matrix, matrix_to_euler_zyz, matrix_to_quaternion, quaternion_to_matrix,
                         random_rotations)
from .sphere.so3_transforms import so3_degree_norms, so3_fft, so3_ifft
from .sphere.transforms import BACKENDS, degree_norms, isft, resize_coefficients, sft
from .sphere.wigner import rotate_coefficients, wigner_D

__all__ = [
    # the sphere and SO(3)
    "GRID_KINDS", "Grid", "grid", "BACKENDS", "sft", "isft", "resize_coefficients", "degree_norms",
    "random_rotations", "euler_zyz_to_matrix", "matrix_to_euler_zyz", "matrix_to_quaternion", "quaternion_to_matrix",
    "wigner_D", "rotate_coefficients", "rotate", "so3_fft", "so3_ifft", "so3_degree_norms",
    "Field", "S2Grid", "S2Coeffs", "SO3Grid", "Representation", "Irreps", "Invariant", "FRAMES",
    # layers and models
    "SphericalConv", "Pointwise", "SpectralPool", "InvariantDescriptor", "build_model", "SphericalModel", "PRESETS",
    "S2ToSO3Conv", "SO3Conv", "SO3Pointwise", "SO3Pool", "SO3Integrate", "SO3Descriptor",
    # measurement
    "random_signals", "equivariance_error", "assert_equivariant", "lie_derivative", "aliasing", "model_aliasing",
    # runs
    "load_results", "load_config", "run_sweep",
    "__version__",
]
