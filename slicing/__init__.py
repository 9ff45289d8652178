"""Slicing: model-sliced networks. Pure torch."""
