"""Utilities every layer of the package uses: one validation schema, the memory guard."""
