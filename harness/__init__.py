"""harness: SO(3)-equivariance error analysis for spherical CNNs.

The pipeline, one module per idea (each imports only those above it):
``grids`` -> ``results`` -> ``legendre`` -> ``transforms`` -> ``plots`` -> ``rotations`` ->
``layers`` -> ``models`` -> ``equivariance`` -> ``sweeps`` (-> ``__main__``, the CLI).
``harness.plots`` (matplotlib, seaborn) is imported on demand, not here.
"""

from .grids import GRID_KINDS, Grid, grid
from .fields import FRAMES, Field, Invariant, Irreps, S2Coeffs, S2Grid
from .layers import InvariantDescriptor, Pointwise, SpectralPool, SphericalConv
from .models import PRESETS, SphericalModel, build_model
from .equivariance import assert_equivariant, equivariance_error, random_signals
from .aliasing import aliasing, model_aliasing
from .lie import lie_derivative
from .results import load_results
from .sweeps import load_config, run_sweep
from .rotations import (
    euler_zyz_to_matrix,
    matrix_to_euler_zyz,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotations,
    rotate,
    rotate_coefficients,
    wigner_D,
)
from .transforms import BACKENDS, degree_norms, isft, resize_coefficients, sft

__version__ = "0.1.0"

__all__ = ["GRID_KINDS", "Grid", "grid", "BACKENDS", "sft", "isft", "resize_coefficients",
           "degree_norms", "random_rotations", "rotate", "rotate_coefficients", "wigner_D",
           "euler_zyz_to_matrix", "matrix_to_euler_zyz", "matrix_to_quaternion",
           "quaternion_to_matrix", "SphericalConv", "Pointwise", "SpectralPool",
           "InvariantDescriptor", "build_model", "SphericalModel", "PRESETS", "equivariance_error",
           "aliasing", "model_aliasing", "random_signals", "assert_equivariant", "lie_derivative", "Field",
           "S2Grid", "S2Coeffs", "Irreps", "Invariant", "FRAMES", "load_results", "load_config", "run_sweep",
           "__version__"]
