"""The explainer: LIME and Grad-CAM for a deployed model, in its own process, on its own queue.

``python -m inference_worker.explain --inference-job-id ID`` (admin launches one per inference job, beside
the inference workers, and relaunches it if it dies). It reads explanation requests from the job's Redis
stream (see :mod:`easel.explaining`), never from the deadline path's Kafka topic, and runs at a lower CPU
priority than the inference workers, so a burst of explanations cannot slow deadline traffic down.

* :mod:`.methods` — the explanations themselves (``pytorch_grad_cam``, ``lime``), on a loaded template;
* :mod:`.overlay` — heat map over the input, as a PNG;
* :mod:`.service` — the consumer-group loop: claim, compute, store, signal; reclaim what a dead explainer left.
"""
