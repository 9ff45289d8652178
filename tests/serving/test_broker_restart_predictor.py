"""A real :class:`~predictor.app.Predictor` (in-process, without HTTP) rides out a restart of the session's Kafka broker
(which loses its topics: the local broker keeps them in memory) on both producer clients: after the restart its
requests reach the workers again and are served. (The workers' side on both consumer clients is
``test_broker_restart_worker.py``; the whole stack's, on the client of record, the chaos test.)"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from minibatch_worker import BATCH, make_worker

from easel.redis_client import make_redis
from easel.request_topics import delete_generations, ensure_generations
from easel.serving import job_keys
from easel.settings import Settings
from predictor.app import JobInfo, PredictIn, Predictor

N = 10  # instances per task: mini-batches of 4, 4 and 2, dealt across both partitions
PARTITIONS = 2


@pytest.fixture
def job(settings: Settings) -> Iterator[str]:
    job_id = f"prest{uuid.uuid4().hex[:10]}"
    yield job_id
    delete_generations(settings, job_id)
    client = make_redis(settings)
    client.delete(*job_keys(job_id))
    client.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_the_predictor_serves_again_after_the_broker_restarted(settings: Settings, local_stack, job: str,  # noqa: ANN001
                                                                client: str) -> None:
    producing = settings.model_copy(update={"serving_kafka_client": client})
    consuming = settings.model_copy(update={"serving_kafka_client": "kafka-python"})
    workers = [make_worker(consuming, job, every_generation=True) for _ in range(PARTITIONS)]
    predictor = Predictor(producing, JobInfo(job, "trial", n_workers=PARTITIONS, batch_size=BATCH, input_shape=(6,)))

    def ensure() -> None:  # what the production worker does when it has had no partitions for a while
        current = predictor.rotation.current
        ensure_generations(settings, job, [current, current + 1], PARTITIONS)

    for worker in workers:
        worker.config.ensure_topic = ensure
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    served_after: list[int] = []  # served instances of each task sent after the restart, until one is whole

    async def served(k: int) -> int:
        x = np.random.default_rng(k).random((N, 6), dtype=np.float32)
        response = await predictor.predict(PredictIn(instances=x.tolist(), deadline_s=3.0))
        statuses = [a["status"] for a in response["predictions"]]
        assert len(statuses) == N and set(statuses) <= {"served", "dropped"}, "every instance answered once"
        return statuses.count("served")

    async def serve() -> None:
        await predictor.start()
        for thread in threads:
            thread.start()
        try:
            give_up = time.monotonic() + 60
            while await predictor.live_workers() != PARTITIONS or await served(0) < N:
                assert time.monotonic() < give_up, "not served before the restart"
                await asyncio.sleep(0.2)
            broker = next(p for p in local_stack.parts if p.name == "kafka")
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(broker.start)
            give_up = time.monotonic() + 120
            while not served_after or served_after[-1] < N:
                assert time.monotonic() < give_up, f"not served again within 120 s of the restart: {served_after}"
                served_after.append(await served(len(served_after) + 1))
        finally:
            await predictor.stop()

    try:
        asyncio.run(serve())
        assert served_after[-1] == N
        assert all(thread.is_alive() for thread in threads), "no worker died of the restart"
    finally:
        for worker in workers:
            worker.stop.set()
        for thread in threads:
            thread.join(30)
