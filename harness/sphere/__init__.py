"""The sphere and SO(3): grids, Legendre tables, spherical Fourier transforms, SO(3)
parametrisations and sampling, Wigner matrices and exact rotation, interpolated rotation, and the
field types that say how a tensor rotates.

Pipeline (each module imports only those before it): ``grids`` -> ``recurrence`` -> ``legendre``
-> ``transforms`` -> ``so3`` -> ``wigner`` -> ``resample`` -> ``fields``.
"""
