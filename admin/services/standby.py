"""Warm standby inference workers: promoting one into a dead worker's slot, and launching a fresh one behind it.

A relaunched worker spends seconds importing torch, loading and calibrating its model before it can join the
consumer group; a standby (``EASEL_SERVING_STANDBY_WORKERS``, launched with the job) has done all that and
waits. Promotion hands the dead slot to the standby:

1. the standby is told in Redis (``easel.serving.promote_key``) — first, so that if Redis cannot be reached
   nothing has changed and the supervisor relaunches the slot as usual;
2. its ``services`` row takes the slot's name (it becomes the slot's latest launch, counted against the
   slot's restart budget) and its command loses ``--standby``, so a later relaunch of the slot is a worker;
3. a fresh standby is launched under the standby's old name.

Only a standby whose record in ``easel.serving.standbys_key`` is fresh (it refreshes it every second while it
waits) is promoted: one still loading, or dead, is not.
"""

from __future__ import annotations

import json
import logging
import time

import redis
from sqlalchemy import select

from admin.services.orchestration import worker_version_id
from admin.services.restarts import ALIVE, Death
from admin.state import AdminState
from easel.db.enums import ServiceKind
from easel.db.models import InferenceJob, Service
from easel.db.session import session_scope
from easel.launcher import ServiceSpec
from easel.serving import LIVE_S, STANDBY_PREFIX, promote_key, standbys_key

log = logging.getLogger("admin.supervisor")

STANDBY_FLAG = "--standby"
PROMOTION_TTL_S = 60  # a promotion nobody took (the standby died meanwhile) does not outlive this


class Standbys:
    def __init__(self, state: AdminState) -> None:
        self.state = state
        self._redis = redis.Redis.from_url(state.settings.resolved_redis_url, socket_connect_timeout=1,
                                           socket_timeout=2)

    def ready(self, job_id: str) -> set[str]:
        """Service ids of the job's standbys that are loaded and waiting (records fresher than ``LIVE_S``)."""
        try:
            records = self._redis.hgetall(standbys_key(job_id))
        except redis.RedisError:
            return set()
        now, ready = time.time(), set()
        for key, raw in records.items():
            try:
                seen = float(json.loads(raw)["seen_at"])
            except (ValueError, KeyError, TypeError):
                continue
            if now - seen <= LIVE_S:
                ready.add(key.decode() if isinstance(key, bytes) else str(key))
        return ready

    def promote(self, job_id: str, death: Death) -> str | None:
        """Hand ``death``'s slot to a ready standby of the job; the promoted service's id, or None when no
        standby is ready (the caller relaunches the slot)."""
        ready = self.ready(job_id)
        if not ready:
            return None
        with session_scope(self.state.sessions) as session:
            serving = session.get_one(InferenceJob, job_id).model_version_id
            standby = next((row for row in session.scalars(select(Service).where(
                Service.inference_job_id == job_id, Service.kind == ServiceKind.INFERENCE_WORKER,
                Service.status.in_(ALIVE), Service.name.startswith(STANDBY_PREFIX), Service.id.in_(sorted(ready)),
                Service.launcher == self.state.launcher.name).order_by(Service.created_at))
                # a standby loaded with a version the job no longer serves (a rolling update since) is no spare
                if worker_version_id(row.command) == serving), None)
            if standby is None:
                return None
            promoted, spare_name = standby.id, standby.name
            argv = list(standby.command.get("argv", []))
            env = dict(standby.command.get("env", {}))
        try:
            pipe = self._redis.pipeline()
            pipe.rpush(promote_key(job_id, promoted), death.name)
            pipe.expire(promote_key(job_id, promoted), PROMOTION_TTL_S)
            pipe.hdel(standbys_key(job_id), promoted)
            pipe.execute()
        except redis.RedisError:
            log.exception("could not promote standby %s; relaunching %s instead", promoted, death.name)
            return None
        with session_scope(self.state.sessions) as session:
            row = session.get_one(Service, promoted)
            row.name = death.name
            row.command = {**row.command, "argv": [a for a in argv if a != STANDBY_FLAG], "promoted_from": spare_name}
        log.warning("inference worker %s ended (%s, exit %s); standby %s promoted into its slot", death.name,
                    death.status.value, death.exit_code, promoted)
        try:
            self.state.launcher.start(ServiceSpec(name=spare_name, kind=ServiceKind.INFERENCE_WORKER, argv=argv,
                                                  env=env, inference_job_id=job_id))
        except Exception:  # noqa: BLE001 - the job serves on; the missing standby is only a slower next recovery
            log.exception("could not launch a fresh standby %s", spare_name)
        return promoted

    def close(self) -> None:
        self._redis.close()


__all__ = ["STANDBY_FLAG", "Standbys"]
