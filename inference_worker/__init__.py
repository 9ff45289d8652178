"""Inference worker: Kafka consumer running the slice-rate scheduler (filled in by the serving issue)."""
