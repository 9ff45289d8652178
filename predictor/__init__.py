"""Predictor: HTTP front of an inference job (filled in by the serving issue)."""
