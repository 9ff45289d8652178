"""Python client of the Easel REST API (httpx only; no server code).

Example::

    from sdk import Client
    client = Client("http://127.0.0.1:3000")
    client.login("superadmin@easel.local", "easel-superadmin")
    print([m.name for m in client.list_models()])
"""

from sdk.client import Client, ProgressReader
from sdk.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    EaselError,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    Unavailable,
    UnsupportedFormat,
)
from sdk.retry import RetryPolicy
from sdk.types import (
    ApiKey,
    App,
    Dataset,
    DatasetSchema,
    Explanation,
    Health,
    InferenceJob,
    InferenceJobUpdate,
    Model,
    ModelVersion,
    Page,
    Pool,
    PoolShare,
    PoolUser,
    PoolWorker,
    Service,
    StageChange,
    SubTrainJob,
    Token,
    TrainBudget,
    TrainJob,
    Trial,
    TrialLog,
    User,
    Verdict,
)

__all__ = [
    "ApiError", "ApiKey", "App", "Client", "Conflict", "ConnectionFailed", "Dataset", "DatasetSchema", "EaselError",
    "Explanation", "Forbidden", "Health",
    "InferenceJob", "InferenceJobUpdate", "Invalid", "Model", "ModelVersion", "NotFound", "Page", "PayloadTooLarge",
    "Pool", "PoolShare", "PoolUser", "PoolWorker",
    "ProgressReader", "RetryPolicy", "ServerError", "Service", "StageChange", "SubTrainJob", "Token", "TrainBudget",
    "TrainJob", "Trial", "TrialLog", "Unauthorized", "Unavailable", "UnsupportedFormat", "User", "Verdict",
]
