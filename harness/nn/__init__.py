"""Network layers (Esteves et al. 2018) and models built from specs: ``layers`` -> ``models``."""
