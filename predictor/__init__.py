"""Predictor: the HTTP front of an inference job (``POST /predict``), a Kafka producer of its instances and
the gatherer of their answers. Run it with ``python -m predictor --inference-job-id ID``."""
