"""Property-based run over the OpenAPI schema, authenticated as the superadmin: no input yields a 5xx.

Every operation gets schema-valid (positive) and schema-violating (negative) requests. The run is bounded
(a few examples per operation and mode) so it fits the suite's time budget on two cores.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from sdk import Client
from tests.support import ServerThread

MAX_EXAMPLES = 20


def test_no_input_makes_a_server_error(admin_server: ServerThread, root: Client) -> None:
    schema = schemathesis.openapi.from_url(f"{admin_server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {root.token}"}
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
                response = case.call(headers=headers, timeout=30)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
            except Exception as error:  # noqa: BLE001 - collect every operation's failure, then report
                failures.append(f"{operation.label} [{mode.value}]: {str(error)[:800]}")
    assert operations >= 27
    assert not failures, "\n\n".join(failures)
    assert Client(admin_server.url).health().status == "ok"
