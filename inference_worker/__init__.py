"""Inference worker: a Kafka consumer-group member that plans each task's mini-batches with the slice-rate
scheduler and answers every instance (served or dropped) through the job's results stream.

Run it with ``python -m inference_worker --inference-job-id ID`` (admin does, for each inference job).
"""
