"""Schemathesis over the OpenAPI schema with a valid (admin) token: generated requests to
every operation must never get a 5xx, and every response must match its documented status,
content type and schema. The number of generated cases is printed at the end of the module.

Simulation limits are tightened for the run (the API refuses bigger requests with a 422), so
the whole module stays within about a minute on 2 cores.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import make_api

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 8
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_api(pipeline_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    limits = dict(max_episodes=40, max_whatif_skus=4, max_sync_work=120, max_task_skus=8,
                  max_task_work=200)  # fmt: skip
    gen = make_api(f"sqlite:///{work / 'fuzz.db'}", pipeline_run, work, "fuzz", **limits)
    api = next(gen)
    yield api
    gen.close()


def _operations(app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])  # fmt: skip
def test_api_conforms_to_its_schema(fuzz_api, mode):
    """Every operation, with valid (positive) and invalid (negative) generated input."""
    headers = fuzz_api.h("admin")
    operations = _operations(fuzz_api.app)
    assert len(operations) >= 25

    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            response = case.call(headers=headers)
            TALLY[str(response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            run()
        except Unsatisfiable:
            # nothing invalid can be sent to an operation without inputs (GET /health)
            assert mode is GenerationMode.NEGATIVE


def test_cases_were_generated_and_no_5xx(fuzz_api, capsys):
    # Runs after the generated tests of this module (pytest keeps file order).
    n5 = sum(v for k, v in TALLY.items() if k.startswith("5"))
    with capsys.disabled():
        print(
            f"\nschemathesis: {sum(TALLY.values())} generated cases, status codes "
            f"{dict(sorted(TALLY.items()))}, {n5} server errors"
        )
    assert sum(TALLY.values()) >= 300
    assert not any(k.startswith("5") for k in TALLY)
