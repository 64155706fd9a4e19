"""Measurement of any model: ``watch`` (hooks, fields, safe runs) -> ``equivariance``
(per-layer errors, assert_equivariant) -> ``lie`` (the Lie derivative) -> ``aliasing``.
"""
