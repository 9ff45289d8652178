"""One settings object for every Easel process, read from ``EASEL_*`` environment variables.

A bad value fails at start-up with a message that names the variable, so a misconfigured service never
limps along. Services call :func:`get_settings` once and pass the object down; nothing reads
``os.environ`` behind its back.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

ENV_PREFIX = "EASEL_"


class LauncherKind(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class SandboxMode(StrEnum):
    BWRAP = "bwrap"  # a bubblewrap child of the worker itself
    RUNNER = "runner"  # a child of the model-runner service beside the worker (Kubernetes: its own container)


class DeviceKind(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


Port = Annotated[int, Field(ge=1, le=65535)]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
# Public development credentials: fine on loopback, refused by admin on any other address.
DEV_SECRET_KEY = "dev-secret-change-me"
DEV_SUPERADMIN_PASSWORD = "easel-superadmin"


class SettingsError(ValueError):
    """Raised when an ``EASEL_*`` variable holds a value Easel cannot use."""


class Settings(BaseSettings):
    """Everything a service needs to find the others. Defaults suit one machine (``easel up``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    data_dir: Path = Field(default=Path("~/.easel"), description="root of the local stack and blob store")
    database_url: str | None = Field(
        default=None, description="admin's SQLAlchemy URL (the schema's owner); default: the local stack's")
    service_database_urls: dict[str, str] = Field(
        default={}, description="JSON {role: URL} of the services' own database roles (advisor, train, inference, "
                                "predictor) when EASEL_DATABASE_URL is set; default: the local stack's roles")
    redis_url: str | None = Field(default=None, description="redis:// URL; default: the local stack's")
    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]")
    launcher: LauncherKind = LauncherKind.LOCAL
    device: DeviceKind = DeviceKind.AUTO
    admin_host: str = "127.0.0.1"
    admin_port: Port = 3000
    secret_key: str = Field(default=DEV_SECRET_KEY, min_length=8,
                            description="signs bearer tokens; `easel up` generates one in the data dir")
    admin_url: str | None = Field(default=None, description="admin's base URL for clients; default from host/port")

    # Admin: the first superadmin, tokens, passwords, uploads, template checks, service launching.
    superadmin_email: str = Field(default="superadmin@easel.local", description="seeded on admin's first start")
    superadmin_password: str = Field(default=DEV_SUPERADMIN_PASSWORD, min_length=8,
                                     description="seeded once; `easel up` generates one in the data dir")
    token_ttl_s: int = Field(default=24 * 3600, ge=1, le=90 * 24 * 3600, description="bearer token lifetime")
    password_hash_rounds: int = Field(default=12, ge=4, le=16, description="bcrypt cost factor (log2 rounds)")
    password_min_length: int = Field(default=10, ge=8, le=128, description="shortest password a user may set")
    password_min_score: int = Field(default=3, ge=0, le=4, description="least zxcvbn strength score (0-4) accepted")
    login_max_failures: int = Field(
        default=10, ge=1, le=10_000, description="failed logins per account (and per client) before a lockout")
    login_lockout_s: int = Field(
        default=300, ge=1, le=86_400, description="window of counted failed logins, and the lockout's length")
    max_json_bytes: int = Field(default=1 << 20, ge=1024, description="largest body of a non-upload route")
    max_upload_bytes: int = Field(default=1 << 30, ge=1024, description="largest dataset upload accepted")
    max_unpacked_bytes: int = Field(default=4 << 30, ge=1024, description="largest unpacked size of a zip dataset")
    max_compression_ratio: int = Field(
        default=100, ge=1, description="largest unpacked/packed ratio of an archive member (zip bombs)")
    max_dataset_images: int = Field(default=200_000, ge=1)
    max_template_bytes: int = Field(default=1 << 20, ge=256, description="largest model template (.py) upload")
    template_check_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    template_check_memory_mb: int = Field(default=4096, ge=64, description="address-space cap of the checker")
    template_check_concurrency: int = Field(
        default=4, ge=1, le=256, description="template checks run at once; more uploads get 429")
    # Sandbox of model-template code (easel/sandbox): a bubblewrap child, unprivileged, no network, no secrets.
    sandbox_builtin: bool = Field(
        default=False, description="run built-in (shipped, trusted) templates sandboxed too; uploads always are")
    sandbox_uid: int = Field(default=2_000_000_000, ge=1, le=2**31 - 2,
                             description="first of the unprivileged uids/gids template code runs as when the "
                                         "platform is root (each sandbox leases one of its own)")
    sandbox_uid_count: int = Field(
        default=65536, ge=1, le=2**24,
        description="how many uids from EASEL_SANDBOX_UID sandboxes lease (RLIMIT_NPROC is counted per uid); "
                    "1: every sandbox shares EASEL_SANDBOX_UID")
    sandbox_memory_mb: int = Field(default=8192, ge=0, description="address-space cap of a sandbox; 0: none")
    sandbox_cpu_s: int = Field(default=86400, ge=0,
                               description="CPU seconds a training or checking sandbox may use; 0: none")
    sandbox_nproc: int = Field(default=256, ge=8, description="processes + threads of the sandbox user")
    sandbox_nofile: int = Field(default=1024, ge=32, description="open files of a sandboxed process")
    sandbox_scratch_mb: int = Field(default=512, ge=1, description="size of each private tmpfs of a sandbox (HOME, /dev/shm)")
    sandbox_call_timeout_s: float = Field(
        default=300.0, gt=0, le=86400, description="longest one predict/explain/load call into a sandbox may take")
    sandbox_mode: SandboxMode = Field(
        default=SandboxMode.BWRAP,
        description="where sandboxes start: bwrap (a child of this process) or runner (a child of the model-runner "
                    "service listening in EASEL_SANDBOX_RUNNER_DIR, e.g. a container without secrets)")
    sandbox_runner_dir: Path = Field(
        default=Path("/run/easel-sandbox"), description="the model-runner's socket directory (runner mode)")
    quota_train_workers: int = Field(default=16, ge=0, description="live train workers one user may have")
    quota_inference_workers: int = Field(default=16, ge=0, description="live inference workers one user may have")
    quota_live_jobs: int = Field(default=8, ge=0, description="train and inference jobs one user may have running")
    webui_dist: Path | None = Field(
        default=None, description="the dashboard's production build admin serves; default: webui/dist of the checkout"
    )
    events_poll_s: float = Field(
        default=0.5, ge=0.05, le=60, description="how often a train job's live event stream looks for changes"
    )
    metrics_scrape_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="longest admin waits for one service's /metrics when aggregating"
    )

    # Serving (predictor + inference workers of an inference job).
    predictor_host: str = Field(default="127.0.0.1", description="interface predictors listen on")
    serving_policy: str = Field(
        default="scheduler",
        description="inference workers' policy: scheduler[:priced|queue|myopic], fixed:<rate>, "
                    "model-switching or clipper",
    )
    serving_batch_size: int | None = Field(
        default=None, ge=1, le=4096, description="mini-batch size S_mb; default: the trial profile's batch size"
    )
    serving_fetch_wait_ms: int = Field(
        default=10, ge=1, le=500, description="longest a worker's Kafka fetch waits for new requests"
    )
    serving_kafka_client: Literal["kafka-python", "confluent-kafka"] = Field(
        default="kafka-python",
        description="the requests hop's Kafka client, the predictor's producer and the inference workers' consumer: "
                    "kafka-python (the default) or confluent-kafka (librdkafka: a fraction of the CPU per fetch, "
                    "a shorter hop; see easel/kafka_confluent.py and easel/kafka_confluent_producer.py)")
    serving_message_kb: int = Field(
        default=256, ge=0, le=16 << 10,
        description="most KiB of instances in one requests message: consecutive mini-batches of a worker's share "
                    "travel together up to this (the broker's and the clients' cost is per message); 0 = one "
                    "mini-batch per message")
    serving_margin_s: float = Field(
        default=0.005, ge=0, le=5, description="time kept back from each deadline for sending the answer back"
    )
    serving_threads: int = Field(default=1, ge=0, le=256, description="torch threads per inference worker; 0 = torch's default")
    serving_ewma_alpha: float = Field(default=0.2, gt=0, le=1, description="weight of a new batch time in t_i's EWMA")
    serving_rate_window_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="how far back a worker's scheduler looks to estimate its load (the arrival rate)")
    serving_rate_confidence: float = Field(
        default=1.0, ge=0, le=10,
        description="standard deviations the scheduler adds to its arrival-rate estimate (its load safety)")
    serving_safety_sigmas: float = Field(
        default=1.0, ge=0, le=10,
        description="standard deviations of a plan's total time (measured spread of batch times) the scheduler keeps free")
    serving_decision_budget_s: float = Field(
        default=0.0005, gt=0, le=1,
        description="most seconds one scheduling decision searches (also capped at 1% of the task's time left)")
    serving_cache_max_loss: float = Field(
        default=0.001, ge=0, le=1,
        description="most effective accuracy a cached plan may lose against the exact optimum")
    serving_max_instances: int = Field(default=100_000, ge=1, description="most instances in one predict request")
    serving_max_deadline_s: float = Field(default=300.0, gt=0, le=86_400, description="longest deadline accepted")
    serving_drain_s: float = Field(default=10.0, ge=0, le=600, description="how long a stopping service drains")
    serving_max_queued_work_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="admission bound: expected compute seconds (from the profile, per live worker) a predictor "
                    "may have queued; requests beyond it get 429 with Retry-After")
    serving_max_inflight_instances: int = Field(
        default=200_000, ge=1, description="memory bound: instances a predictor holds in flight at most (429 beyond)")
    serving_standby_workers: int = Field(
        default=1, ge=0, le=8,
        description="warm standby inference workers per job: loaded and calibrated, outside the consumer group, "
                    "promoted at once into a dead worker's slot (each costs one model's memory and one idle "
                    "process); 1 by default because a cold relaunch takes 20-30 s on a 2-core machine (issue #12's "
                    "target is 10 s back to full strength)")
    predictor_key_cache_s: float = Field(
        default=5.0, ge=0, le=300,
        description="how long a predictor trusts its verdict on an API key; a revoked key is refused within this")
    predictor_key_rate_limit: int = Field(
        default=1000, ge=1, description="requests (predict, explain) one API key may make per rate window (429 beyond)")
    predictor_key_rate_window_s: int = Field(default=1, ge=1, le=86_400, description="the per-key rate window")
    serving_topic_retention_s: float = Field(
        default=600.0, gt=0, le=7 * 86_400, description="how long the broker keeps a served request message "
        "(retention.ms; with topic rotation, also the longest a requests topic generation is sent to)")
    serving_topic_rotate_mb: float = Field(
        default=32.0, ge=0, le=1 << 20,
        description="rotate a job's requests topic to a new generation after this many MB of messages (and after "
                    "EASEL_SERVING_TOPIC_RETENTION_S), deleting the old one once drained: what frees memory on a "
                    "broker that ignores retention (Tansu); 0 = one topic for the job's life")

    # Fault tolerance.
    redis_socket_timeout_s: float = Field(
        default=30.0, ge=10, le=600,
        description="Redis socket timeout; longer than every blocking wait (BRPOP, XREAD BLOCK) the services use")
    supervisor_max_restarts: int = Field(
        default=5, ge=0, le=1000, description="relaunches of one service slot before the supervisor gives up")
    supervisor_backoff_base_s: float = Field(
        default=1.0, gt=0, le=600,
        description="delay before a slot's second relaunch (the first is immediate); doubles per relaunch after")
    supervisor_backoff_cap_s: float = Field(default=30.0, gt=0, le=3600, description="longest relaunch delay")
    train_pool_workers: int = Field(
        default=0, ge=0, le=1024,
        description="generic train workers shared by every train job (0: each job launches its own workers)")
    warm_start: bool = Field(
        default=True, description="local launcher: start advisors by forking a parent that imported their modules "
                                  "once (a zygote) instead of a fresh interpreter each")
    train_pool_policy: Literal["cost_aware", "regret_rate", "fifo", "round_robin"] = Field(
        default="regret_rate", description="how the pool's free workers are allocated among users' jobs")
    train_pool_start_wait_s: float = Field(
        default=5.0, ge=0, le=600,
        description="regret_rate: how long after a sub-job is created a free worker may be held for it while its "
                    "advisor has not bid yet (its first result is worth more than another user's second trial)")
    kafka_session_timeout_ms: int = Field(
        default=2000, ge=500, le=300_000,
        description="consumer-group session timeout: how long the broker waits for a silent member (a killed "
                    "worker) before its partitions go to the others; heartbeats are sent every quarter of it")

    # Registry, rolling updates, monitoring.
    promotion_tolerance: float = Field(
        default=0.02, ge=0, le=1, description="the promotion gate's default tolerance (accuracy points; time share)")
    promotion_eval_timeout_s: float = Field(
        default=600.0, gt=0, le=7200, description="how long the gate's measurement of two versions may take")
    update_ready_timeout_s: float = Field(
        default=300.0, gt=0, le=3600, description="how long a rolling update waits for its new workers to be ready")
    feedback_ttl_s: int = Field(
        default=3600, ge=1, le=7 * 86400, description="how long a predictor keeps a request's answers for feedback")
    metrics_interval_s: float = Field(
        default=15.0, gt=0, le=3600, description="how often admin collects each inference job's serving metrics")
    metrics_token: str | None = Field(
        default=None, min_length=16, description="bearer token Prometheus sends to admin's /metrics (admins' own "
                                                 "tokens are accepted too); unset: admins' tokens only")

    # Early stopping: asynchronous successive halving (budget PRUNER "asha", or "asha_promote" for the variant
    # that pauses and promotes); a job's budget may override both.
    asha_min_epochs: int = Field(default=1, ge=1, le=10_000,
                                 description="ASHA's minimum resource (grace period): epochs before the first rung")
    asha_reduction_factor: int = Field(default=3, ge=2, le=100,
                                       description="ASHA's η: rungs at min_epochs·ηᵏ, the best 1/η of each goes on")
    asha_brackets: int = Field(default=1, ge=1, le=10,
                               description="the promoting ASHA's brackets (asynchronous Hyperband): bracket j "
                                           "first judges a trial at min_epochs·ηʲ epochs; 1: one ASHA")

    # Explanations (LIME, Grad-CAM): their own processes and queue, never the deadline path.
    explainers: int = Field(default=1, ge=0, le=64, description="explainer processes per inference job (0: none)")
    explain_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="how long an explain request waits for its answer before it errs")
    explain_reclaim_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="an explanation whose explainer went silent this long is handed to another explainer")
    explain_max_attempts: int = Field(default=2, ge=1, le=10, description="explainers tried per explanation")
    explain_nice: int = Field(default=10, ge=0, le=19, description="CPU niceness of explainers (below serving)")
    explain_batch_size: int = Field(default=128, ge=1, le=4096, description="LIME samples per model call")
    explain_max_samples: int = Field(default=5000, ge=10, le=100_000, description="most LIME samples per request")

    # Blob store: a local folder (default) or an S3-compatible bucket shared by services on several hosts.
    blob_url: str | None = Field(
        default=None, description="s3://bucket[/prefix] selects the S3 backend; default: $EASEL_DATA_DIR/blobs")
    s3_endpoint_url: str | None = Field(default=None, description="S3 API endpoint (MinIO etc.); default: AWS")
    s3_region: str = Field(default="us-east-1", min_length=1)
    s3_access_key_id: str | None = Field(default=None, description="default: boto3's credential chain")
    s3_secret_access_key: str | None = Field(default=None, description="default: boto3's credential chain")

    # Kubernetes launcher (EASEL_LAUNCHER=kubernetes): where and how service pods run.
    k8s_namespace: str = Field(default="easel", pattern=DNS_LABEL, description="namespace of the service pods")
    k8s_image: str = Field(default="easel:0.1.0", min_length=1, description="image of every service pod")
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    k8s_image_pull_secrets: list[str] = Field(default=[], description="JSON list of pull Secret names")
    k8s_service_account: str = Field(default="easel-service", pattern=DNS_SUBDOMAIN,
                                     description="ServiceAccount of service pods (needs no API rights)")
    k8s_settings_configmap: str = Field(default="easel-settings", pattern=DNS_SUBDOMAIN,
                                        description="ConfigMap every service pod takes its EASEL_* settings from")
    k8s_settings_secret: str = Field(default="easel-secrets", pattern=DNS_SUBDOMAIN,
                                     description="admin's Secret of secret EASEL_* settings; a service pod takes "
                                                 "<this>-<role> (its own database URL, no signing key)")
    k8s_cpu_request: str = Field(default="500m", pattern=QUANTITY)
    k8s_cpu_limit: str = Field(default="2", pattern=QUANTITY)
    k8s_memory_request: str = Field(default="1Gi", pattern=QUANTITY)
    k8s_memory_limit: str = Field(default="4Gi", pattern=QUANTITY)
    k8s_platform_cpu: str = Field(
        default="500m", pattern=QUANTITY,
        description="CPU of the platform container of a pod that runs model code (the runner gets the K8S_CPU_*)")
    k8s_platform_memory: str = Field(
        default="1Gi", pattern=QUANTITY, description="memory of the platform container of a model-running pod")
    k8s_user_namespaces: bool = Field(
        default=False, description="model-running pods get hostUsers: false (a user namespace; the runner then "
                                   "also sandboxes each child with bubblewrap, without network)")
    k8s_gpu_resource: str = Field(default="nvidia.com/gpu", description="extended resource a GPU pod asks for")
    k8s_gpu_node_selector: dict[str, str] = Field(default={}, description="JSON node selector of GPU pods")
    k8s_gpu_tolerations: list[dict[str, str]] = Field(default=[], description="JSON tolerations of GPU pods")
    k8s_kubeconfig: str | None = Field(default=None, description="kubeconfig outside a cluster; default: in-cluster")
    predictor_url: str | None = Field(
        default=None, description="URL a predictor records for clients; default: http://<host>:<port> it binds")

    # Loopback ports of the local stack's servers.
    postgres_port: Port = 54329
    redis_port: Port = 63799
    kafka_port: Port = 19092

    @field_validator("sandbox_uid_count")
    @classmethod
    def _check_uid_range(cls, value: int, info: ValidationInfo) -> int:
        first = info.data.get("sandbox_uid", 0)
        if first + value - 1 > 2**31 - 2:
            raise ValueError(f"EASEL_SANDBOX_UID {first} + {value} uids pass the largest uid (2**31 - 2)")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql", "sqlite")):
            raise ValueError("must be a postgresql:// or sqlite:// SQLAlchemy URL")
        return value

    @field_validator("service_database_urls")
    @classmethod
    def _check_service_database_urls(cls, value: dict[str, str]) -> dict[str, str]:
        from easel.db.passwords import ROLES

        for role, url in value.items():
            if role not in ROLES[2:]:
                raise ValueError(f"{role!r} is not a service role (one of {', '.join(ROLES[2:])})")
            if not url.startswith("postgresql"):
                raise ValueError(f"the {role} URL must be a postgresql:// SQLAlchemy URL")
        return value

    @field_validator("superadmin_email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        value = value.strip().lower()
        if not EMAIL.match(value):
            raise ValueError("must be an e-mail address like name@example.org")
        return value

    @field_validator("admin_url")
    @classmethod
    def _check_admin_url(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// URL")
            value = value.rstrip("/")
        return value

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str | None) -> str | None:
        if value is not None:
            bucket = value.removeprefix("s3://").partition("/")[0]
            if not value.startswith("s3://") or not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
                raise ValueError("must be s3://<bucket>[/prefix] with a valid bucket name")
        return value

    @field_validator("predictor_url", "s3_endpoint_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("serving_policy")
    @classmethod
    def _check_serving_policy(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("scheduler", "scheduler:priced", "scheduler:queue", "scheduler:myopic", "model-switching",
                     "clipper"):
            return value
        kind, sep, rate = value.partition(":")
        if kind == "fixed" and sep:
            try:
                number = float(rate)
            except ValueError:
                number = -1.0
            if 0.0 < number <= 1.0:
                return f"fixed:{number:g}"
        raise ValueError("must be scheduler[:priced|queue|myopic], fixed:<rate in (0, 1]>, model-switching or clipper")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return value

    # -- resolved URLs: explicit setting first, else the local stack on loopback --------------------
    @property
    def stack_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def resolved_database_url(self) -> str:
        """Admin's database URL: ``EASEL_DATABASE_URL``, else the local stack's owner role."""
        return self.database_url_for("admin")

    def database_url_for(self, role: str) -> str:
        """The database URL of ``role`` (``admin`` or a service role: advisor, train, inference, predictor).

        With ``EASEL_DATABASE_URL`` set: admin's is it, a service's is its entry in
        ``EASEL_SERVICE_DATABASE_URLS``, else (a deployment without per-service roles) the same URL. Otherwise
        the local stack's role, its password read from the data dir's ``database.json``."""
        from easel.db.passwords import read_passwords

        if self.database_url is not None:
            return self.database_url if role == "admin" else self.service_database_urls.get(role, self.database_url)
        password = (read_passwords(self.data_dir) or {}).get(role)
        user = f"easel_{role}:{password}" if password else f"easel_{role}"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.postgres_port}/easel"

    @property
    def resolved_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def resolved_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uses_development_credentials(self) -> bool:
        """The public development signing key or superadmin password is in use."""
        return self.secret_key == DEV_SECRET_KEY or self.superadmin_password == DEV_SUPERADMIN_PASSWORD

    @property
    def resolved_admin_url(self) -> str:
        host = "127.0.0.1" if self.admin_host in ("0.0.0.0", "::", "") else self.admin_host
        return self.admin_url or f"http://{host}:{self.admin_port}"


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        lines.append(f"{ENV_PREFIX}{field.upper()}: {item['msg']} (got {item.get('input')!r})")
    return "invalid Easel settings:\n  " + "\n  ".join(lines)


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise :class:`SettingsError` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None
    except PydanticSettingsError as error:  # a list/dict variable that is not JSON
        field = re.search(r'field "(\w+)"', str(error))
        name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a variable"
        raise SettingsError(f"invalid Easel settings:\n  {name}: must be JSON ({error})") from None
