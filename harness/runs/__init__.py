"""Experiments on disk: ``results`` (provenance, loading) -> ``runner`` (cells, resume, lock,
workers) -> ``sweeps`` (equivariance sweeps) -> ``data`` (datasets on the sphere) -> ``train``
(NR/NR, NR/R, R/R).
"""
