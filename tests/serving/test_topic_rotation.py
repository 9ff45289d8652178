"""Requests topic rotation on the real broker (Tansu frees a topic's memory only when it is deleted).

A real :class:`~predictor.app.Predictor` (driven in-process, without HTTP) and two real inference workers
(the echo template of ``minibatch_worker``, subscribed to every generation of the job's requests topic, as
production workers are) serve a steady stream of tasks while the predictor rotates the requests topic at every
chance: every instance of every task is answered exactly once, served with its own values, across at least two
rotations, and the retired generations are deleted from the broker.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from minibatch_worker import BATCH, make_worker

import predictor.app as predictor_app
from easel.redis_client import make_redis
from easel.request_topics import delete_generations, generations
from easel.serving import job_keys
from easel.settings import Settings
from predictor.app import JobInfo, PredictIn, Predictor

N = 10  # instances per task: mini-batches of 4, 4 and 2, dealt across both partitions


@pytest.fixture
def job(settings: Settings) -> Iterator[str]:
    job_id = f"rot{uuid.uuid4().hex[:10]}"
    yield job_id
    delete_generations(settings, job_id)
    client = make_redis(settings)
    client.delete(*job_keys(job_id))
    client.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_requests_rotate_across_generations_and_every_instance_is_answered_once(
        settings: Settings, job: str, monkeypatch: pytest.MonkeyPatch, client: str) -> None:
    """On both clients of the requests hop (the predictor's producer and the workers' consumer): librdkafka 2.16
    crashes the process (the workers run in this one) if a topic it still fetches from is deleted, so a worker names
    the oldest generation it has a consumer open on until the consumer is closed, and the predictor deletes only
    below every live worker's; the predictor's producer is renewed at each rotation (it forgets the old topic)."""
    # Rotate as soon as allowed (a few KB per generation); retired generations go 1 s after their last deadline.
    monkeypatch.setattr(predictor_app, "ROTATION_GRACE_S", 1.0)
    monkeypatch.setattr(predictor_app, "ROTATION_LEAD_S", 60.0)
    consuming = settings.model_copy(update={"serving_kafka_client": client})
    rotating = consuming.model_copy(update={"serving_topic_rotate_mb": 0.004})
    workers = [make_worker(consuming, job, every_generation=True) for _ in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    info = JobInfo(job, "trial", n_workers=2, batch_size=BATCH, input_shape=(6,))
    predictor = Predictor(rotating, info)
    responses: list[tuple[np.ndarray, dict]] = []
    left: list[int] = []  # the generations on the broker at the end

    async def serve() -> None:
        await predictor.start()
        for thread in threads:
            thread.start()
        try:
            give_up = time.monotonic() + 60
            sent_after = None  # tasks keep coming for a while after the second rotation
            while sent_after is None or time.monotonic() < sent_after:
                assert time.monotonic() < give_up, f"only {predictor.rotation.rotations} rotations"
                if predictor.rotation.rotations >= 2 and sent_after is None:
                    sent_after = time.monotonic() + 2.0
                if await predictor.live_workers() == 0:
                    await asyncio.sleep(0.1)  # the workers are still joining
                    continue
                x = np.random.default_rng(len(responses)).random((N, 6), dtype=np.float32)
                responses.append((x, await predictor.predict(PredictIn(instances=x.tolist(), deadline_s=5.0))))
            # The retired generations are deleted once their last deadline has passed: only the current and
            # the next generation stay on the broker.
            give_up = time.monotonic() + 30
            while time.monotonic() < give_up:
                left.clear()
                left.extend(await asyncio.to_thread(generations, settings, job))
                if left == [predictor.rotation.current, predictor.rotation.current + 1]:
                    break
                await asyncio.sleep(0.5)
        finally:
            await predictor.stop()

    try:
        asyncio.run(serve())
        assert predictor.rotation.rotations >= 2
        for x, response in responses:
            answers = response["predictions"]
            assert len(answers) == N
            assert [a["status"] for a in answers] == ["served"] * N, "every instance answered once, served"
            assert response["totals"]["unanswered"] == 0
            assert [round(a["prediction"]["probabilities"][1], 3) for a in answers] == [
                round(float(r.sum()), 3) for r in x], "each instance answered with its own values"
        current = predictor.rotation.current
        assert left == [current, current + 1], "every retired generation deleted"
    finally:
        for worker in workers:
            worker.stop.set()
        for thread in threads:
            thread.join(30)
