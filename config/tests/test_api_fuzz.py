"""The JSON API fuzzed from its own OpenAPI schema by schemathesis (generated and mutated bodies,
paths and queries), as a signed-in user with a session (and its CSRF token) and a personal
token: no answer is a server error, and every documented answer matches its schema. The budget
per operation is fixed, so the run fits CI's time."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.tests.factories import UserFactory
from accounts.tokens import token_create

EXAMPLES_PER_OPERATION = 30
CSRF = "k" * 32

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def signed_in(transactional_db: None) -> dict[str, str]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    token = token_create(user=user, name="fuzz", scope="chat").secret
    return {
        "Authorization": f"Bearer {token}",
        "Cookie": f"sessionid={session}; csrftoken={CSRF}",
        "X-CSRFToken": CSRF,
    }


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_server_error_and_every_documented_answer_matches_the_schema(
    case: Any, signed_in: dict[str, str]
) -> None:
    case.call_and_validate(headers=signed_in, checks=[not_a_server_error, response_schema_conformance])
