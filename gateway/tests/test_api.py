"""`GET /v1/models` through the official OpenAI SDK, authenticated by a personal access token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2
import openai
import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from accounts.tests.factories import UserFactory
from accounts.tokens import token_create
from providers.testing.base import Call, Count, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


@pytest.fixture
def sdk_http() -> Iterator[httpx2.Client]:
    """The SDK's HTTP client, talking to this Django in-process (no socket, no network)."""
    with httpx2.Client(transport=httpx2.WSGITransport(app=get_wsgi_application())) as client:
        yield client


def _sdk(http: httpx2.Client, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0)


def test_the_sdk_lists_the_models_the_token_s_user_may_use(sdk_http: httpx2.Client) -> None:
    from providers.catalog import catalog_seed

    catalog_seed()
    secret = token_create(user=UserFactory(), name="sdk", scope="read").secret
    models = _sdk(sdk_http, secret).models.list()
    assert [model.id for model in models.data] == ["arbor:demo"]
    assert models.data[0].owned_by == "arbor" and models.data[0].object == "model"


def test_the_sdk_is_refused_with_openai_s_authentication_error_for_a_bad_token(sdk_http: httpx2.Client) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        _sdk(sdk_http, "arb_not-a-token").models.list()
    assert refused.value.status_code == 401
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    assert refused.value.body["type"] == "authentication_error"  # type: ignore[index]


def test_a_session_does_not_open_the_openai_compatible_api(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get("/v1/models").status_code == 401


# --- POST /v1/chat/completions ------------------------------------------------------------------
MODEL = "openai:gpt-5-mini"


def _user_with_access(**tier_fields: object) -> object:
    from accounts.tests.factories import TierFactory
    from providers.catalog import catalog_seed

    user = UserFactory(tier=TierFactory(**tier_fields)) if tier_fields else UserFactory()
    catalog_seed()  # after the users: it grants its models to their tiers
    if tier_fields:
        from providers.models import Model, TierAccess

        access, _ = TierAccess.objects.get_or_create(tier=user.tier)
        access.allowed_models.add(Model.objects.get(model_id=MODEL))
    return user


def test_the_sdk_gets_a_completion_billed_and_recorded_as_an_api_call(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer
) -> None:
    from usage.models import UsageRecord

    openai_fake.script(reply(Say("Hello from "), Say("the fake.")))
    user = _user_with_access()
    secret = token_create(user=user, name="sdk", scope="chat").secret
    answer = _sdk(sdk_http, secret).chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=50,
    )
    assert answer.choices[0].message.content == "Hello from the fake."
    assert answer.choices[0].finish_reason == "stop" and answer.model == MODEL
    record = UsageRecord.objects.get(user=user)
    assert (record.kind, record.model_id, record.outcome) == ("api", MODEL, "complete")
    assert answer.usage is not None and answer.usage.completion_tokens == record.output_tokens
    sent = openai_fake.requests[-1].body
    assert "Be brief." in str(sent["messages"][0]["content"])
    assert 50 in (sent.get("max_completion_tokens"), sent.get("max_tokens"))


def test_a_call_past_the_rate_limit_is_refused_429_with_retry_after(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer
) -> None:
    openai_fake.script(reply(Say("One.")))
    user = _user_with_access(message_capacity=1, messages_per_minute=1)
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "1"}])
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "2"}])
    assert refused.value.body["code"] == "rate_limited"  # type: ignore[index]
    assert int(refused.value.response.headers["Retry-After"]) > 0
    assert len(openai_fake.requests) == 1  # the refused call reached no vendor


def test_a_call_past_the_spend_quota_is_refused_429(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    from decimal import Decimal

    from usage.services.quotas import tier_quota_set

    user = _user_with_access()
    tier_quota_set(tier_id=user.tier_id, daily=Decimal("0.000001"), monthly=None)
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.body["code"] == "quota_exceeded"  # type: ignore[index]
    assert openai_fake.requests == []


def test_an_unknown_model_is_openai_s_not_found(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai:no-such-model", messages=[{"role": "user", "content": "Hi"}])


def test_a_read_token_may_not_call_a_model(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="read").secret)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert openai_fake.requests == []


def test_the_sdk_streams_a_completion_and_its_usage(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    from usage.models import UsageRecord

    openai_fake.script(reply(Say("Streamed "), Say("words."), Count(7, 2)))
    user = _user_with_access()
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "Streamed words."
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    record = UsageRecord.objects.get(user=user)
    assert (record.kind, record.outcome, record.output_tokens) == ("api", "complete", 2)


async def test_a_stream_its_client_left_is_stopped_and_billed_for_what_it_wrote(openai_fake: OpenAIServer) -> None:
    from asgiref.sync import sync_to_async

    from gateway.services import completion_admit, completion_stream
    from providers.contract import ChatMessage
    from usage.models import UsageRecord

    openai_fake.script(reply(*[Say(f"w{index} ") for index in range(200)], delay=0.02))
    user = await sync_to_async(_user_with_access)()
    admitted = await completion_admit(
        user=user,
        model_id=MODEL,
        system="",
        messages=(ChatMessage.text("user", "Count"),),
        max_tokens=None,
        temperature=None,
    )
    stream = completion_stream(admitted)
    read = [await anext(stream) for _ in range(20)]
    assert "".join(read).startswith("w0 w1 w2 ")
    await stream.aclose()
    record = await sync_to_async(UsageRecord.objects.get)(user=user)
    assert (record.kind, record.outcome) == ("api", "stopped")
    # Estimated from what it wrote (a token per four characters), not from the whole reply.
    assert len("".join(read)) // 4 <= record.output_tokens < len("".join(f"w{index} " for index in range(200))) // 4


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _looking_at(url: str) -> list[dict[str, object]]:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": content}]


def test_an_image_as_a_data_url_reaches_a_vision_model(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("A dot.")))
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    answer = client.chat.completions.create(model=MODEL, messages=_looking_at(f"data:image/png;base64,{PNG}"))
    assert answer.choices[0].message.content == "A dot."
    sent = str(openai_fake.requests[-1].body["messages"])
    assert PNG in sent and "What is this?" in sent


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com/cat.png", "unsupported_image"),  # never fetched
        ("data:image/png;base64,bm90IGFuIGltYWdlIGF0IGFsbA==", "unsupported_image"),  # not an image's bytes
        ("data:image/png;base64,!!!!", "invalid"),
    ],
)
def test_an_image_arbor_will_not_take_is_refused_before_any_call(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer, url: str, code: str
) -> None:
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=_looking_at(url))
    assert refused.value.body["code"] == code  # type: ignore[index]
    assert openai_fake.requests == []


def test_an_image_for_a_model_that_takes_none_is_refused(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    from providers.catalogcache import catalog_changed
    from providers.models import Model

    user = _user_with_access()
    Model.objects.filter(model_id=MODEL).update(input_modalities=["text"])
    catalog_changed()
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=_looking_at(f"data:image/png;base64,{PNG}"))
    assert refused.value.body["code"] == "images_not_supported"  # type: ignore[index]
    assert openai_fake.requests == []


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tools_pass_through_and_the_model_s_calls_come_back(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Call("call_1", "get_weather", '{"city": "Paris"}')), reply(Say("Sunny in Paris.")))
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    question = {"role": "user", "content": "Weather in Paris?"}
    asked = client.chat.completions.create(model=MODEL, messages=[question], tools=[WEATHER_TOOL])
    (call,) = asked.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "get_weather", '{"city": "Paris"}')
    assert asked.choices[0].finish_reason == "tool_calls"
    assert openai_fake.requests[-1].body["tools"][0]["function"]["name"] == "get_weather"

    answered = client.chat.completions.create(
        model=MODEL,
        messages=[
            question,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22 °C, sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert answered.choices[0].message.content == "Sunny in Paris."
    sent = openai_fake.requests[-1].body["messages"]
    assert [message["role"] for message in sent][-2:] == ["assistant", "tool"]
    assert sent[-1]["tool_call_id"] == "call_1" and "22 °C" in str(sent[-1]["content"])


def test_a_streamed_answer_carries_the_model_s_tool_calls(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Call("call_9", "get_weather", '{"city": "Oslo"}')))
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER_TOOL], stream=True
        )
    )
    calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or ()]
    assert [(call.id, call.function.name, call.function.arguments) for call in calls] == [
        ("call_9", "get_weather", '{"city": "Oslo"}')
    ]
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"


def test_tools_for_a_model_that_calls_none_are_refused(sdk_http: httpx2.Client, openai_fake: OpenAIServer) -> None:
    from providers.catalogcache import catalog_changed
    from providers.models import Model

    user = _user_with_access()
    Model.objects.filter(model_id=MODEL).update(supports_tools=False)
    catalog_changed()
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER_TOOL])
    assert refused.value.body["code"] == "tools_not_supported"  # type: ignore[index]
    assert openai_fake.requests == []


def test_a_refused_call_releases_its_route(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import services

    released: list[str] = []
    real_release = services.route_release

    async def recorded(route: object) -> None:
        released.append(route.model_id)  # type: ignore[attr-defined]
        await real_release(route)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "route_release", recorded)
    user = _user_with_access(message_capacity=0, messages_per_minute=0)
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert released == [MODEL]  # a user's endpoint's client would be closed here, not leaked


def test_a_provider_failing_midway_is_billed_for_what_it_wrote_and_answered_502(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer
) -> None:
    from usage.models import UsageRecord

    openai_fake.script(reply(Say("Half an "), Say("answer."), drop_after=1))
    user = _user_with_access()
    client = _sdk(sdk_http, token_create(user=user, name="sdk", scope="chat").secret)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code == 502
    record = UsageRecord.objects.get(user=user)
    assert record.kind == "api" and record.outcome != "complete"


def test_a_provider_failing_midway_through_a_stream_ends_it_with_an_error_event(
    sdk_http: httpx2.Client, openai_fake: OpenAIServer
) -> None:
    openai_fake.script(reply(Say("Half an "), Say("answer."), drop_after=1))
    client = _sdk(sdk_http, token_create(user=_user_with_access(), name="sdk", scope="chat").secret)
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True)
    pieces: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == "Half an "


async def test_a_stream_left_after_the_model_finished_is_billed_in_full(openai_fake: OpenAIServer) -> None:
    from asgiref.sync import sync_to_async

    from gateway.services import completion_admit, completion_stream
    from providers.contract import ChatMessage
    from usage.models import UsageRecord

    openai_fake.script(reply(Say("All "), Say("of it."), Count(5, 3)))
    user = await sync_to_async(_user_with_access)()
    admitted = await completion_admit(
        user=user,
        model_id=MODEL,
        system="",
        messages=(ChatMessage.text("user", "Hi"),),
        max_tokens=None,
        temperature=None,
    )
    stream = completion_stream(admitted)
    assert (await anext(stream)).startswith("All ")
    for _ in range(500):  # until the model has written everything (the call's task has ended)
        if len([task for task in asyncio.all_tasks() if "call_model" in repr(task.get_coro())]) == 0:
            break
        await asyncio.sleep(0.01)
    await stream.aclose()
    record = await sync_to_async(UsageRecord.objects.get)(user=user)
    assert (record.kind, record.outcome, record.output_tokens) == ("api", "complete", 3)
