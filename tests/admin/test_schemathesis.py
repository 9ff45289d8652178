"""Property-based run over the OpenAPI schema, as the superadmin and as a normal user: no input yields a 5xx,
and every answer is one the schema publishes — its status documented, its body in the documented schema
(errors in the ``{"error", "detail"}`` envelope), its content type and headers as declared, schema-violating
input refused.

Every operation gets schema-valid (positive) and schema-violating (negative) requests. The run is bounded
(a few examples per operation and mode) so it fits the suite's time budget on two cores.
"""

from __future__ import annotations

import pytest
import schemathesis
from admin_helpers import SUPERADMIN_EMAIL
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sdk import Client
from tests.support import ServerThread

MAX_EXAMPLES = 6
# positive_data_acceptance is left out: schema-valid ids name no object, so 404 is the right answer there.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, missing_required_header]


@pytest.mark.parametrize("who", ["superadmin", "model developer"])
def test_every_answer_is_as_published(admin_server: ServerThread, root: Client, make_user, who: str) -> None:
    client = root if who == "superadmin" else make_user("MODEL_DEVELOPER")[0]
    schema = schemathesis.openapi.from_url(f"{admin_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {client.token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                if case.path == "/tokens" and isinstance(case.body, dict):
                    case.body["email"] = "fuzz@easel.test"  # never lock the superadmin out mid-run
                response = case.call(headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
            except Exception as error:  # noqa: BLE001 - collect every operation's failure, then report
                failures.append(f"{operation.label} [{mode.value}]: {str(error)[:800]}")
    assert operations >= 27
    assert not failures, "\n\n".join(failures)
    assert Client(admin_server.url).health().status == "ok"
    assert client.me().email == SUPERADMIN_EMAIL or who != "superadmin"
