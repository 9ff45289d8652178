"""An inference job's requests topics on the broker: its generations, made and deleted here.

The local broker (Tansu 0.6, memory storage) ignores ``retention.ms`` and drops the connection on
``DeleteRecords``: it frees a topic's memory only when the topic is deleted. So a job's requests go to
*generations* of its requests topic (:func:`easel.serving.requests_topic`): the predictor rotates to the next one
after a size or time threshold and deletes the old one once everything sent there is past its deadline
(:mod:`predictor.rotation`). The next generation is made ahead, when the current one begins, and named in Redis
(:func:`easel.serving.next_generation_key`): each worker opens its consumer (its own group) then, so the group is
joined long before the first request reaches it, and reads it beside the current one and any old one still
draining (the switch is gapless). On real Kafka the topics also carry ``retention.ms``
(:func:`easel.kafka_io.topic_config`) as configured.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from easel.kafka_io import topic_config
from easel.serving import requests_generation, requests_topic
from easel.settings import Settings

log = logging.getLogger("easel.request_topics")


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap.split(","))


def generations(settings: Settings, job_id: str) -> list[int]:
    """The generations of the job's requests topic that exist on the broker, oldest first."""
    admin = _admin(settings)
    try:
        found = (requests_generation(job_id, name) for name in admin.list_topics())
        return sorted(g for g in found if g is not None)
    finally:
        admin.close()


def ensure_generations(settings: Settings, job_id: str, wanted: Iterable[int], partitions: int) -> None:
    """Make the generations in ``wanted`` that do not exist yet (idempotent; another service may race us)."""
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        topics = [NewTopic(name, partitions, 1, topic_configs=topic_config(settings))
                  for name in (requests_topic(job_id, g) for g in sorted(set(wanted))) if name not in existing]
        if topics:
            with suppress(TopicAlreadyExistsError):
                admin.create_topics(topics)
            log.info("made requests topics %s", [t.name for t in topics])
    finally:
        admin.close()


def ensure_started(settings: Settings, job_id: str, partitions: int) -> list[int]:
    """A job with no requests topic yet gets its first generation (0); a job with some keeps them (a relaunched
    service must not make a stale generation; the predictor makes the next ones). Returns what exists."""
    found = generations(settings, job_id)
    if not found:
        ensure_generations(settings, job_id, (0,), partitions)
        found = generations(settings, job_id)
    return found


def delete_generations(settings: Settings, job_id: str, doomed: Iterable[int] | None = None) -> list[str]:
    """Delete the job's requests topics of the ``doomed`` generations (all of them when None) that exist;
    returns the topics deleted. Deleting a topic is what frees the local broker's memory."""
    admin = _admin(settings)
    try:
        existing = {g: name for name in admin.list_topics()
                    if (g := requests_generation(job_id, name)) is not None}
        names = sorted(existing[g] for g in (existing if doomed is None else set(doomed)) if g in existing)
        if names:
            with suppress(UnknownTopicOrPartitionError):  # deleted meanwhile
                admin.delete_topics(names)
        return names
    finally:
        admin.close()


__all__ = ["delete_generations", "ensure_generations", "ensure_started", "generations"]
