"""harness: SO(3)-equivariance error analysis for spherical CNNs.

The pipeline, one module per idea (each imports only those above it):
``grids`` -> ``legendre`` -> ``transforms``.
"""

from .grids import GRID_KINDS, Grid, grid
from .transforms import BACKENDS, degree_norms, isft, resize_coefficients, sft

__version__ = "0.1.0"

__all__ = ["GRID_KINDS", "Grid", "grid", "BACKENDS", "sft", "isft", "resize_coefficients",
           "degree_norms", "__version__"]
