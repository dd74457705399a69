"""Reduction: the delta codec, reference selection, reduction profiles and expansion (DESIGN.md §2)."""
