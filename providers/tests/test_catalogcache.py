from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.selectors import tier_registered_default
from accounts.tests.factories import UserFactory
from conftest import process_environment
from providers.admin import ModelAdmin
from providers.catalogcache import (
    UNREAD,
    VERSION_KEY,
    catalog_changed,
    catalog_snapshot,
    catalog_version_known,
    catalog_version_read,
)
from providers.models import Model, Provider, TierAccess
from providers.routing import RouteError, RouteErrorCode, route_for
from providers.selectors import models_available_to
from providers.tests.catalog_fixtures import make_model, make_provider


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Provider:
    monkeypatch.setenv("ACME_KEY", "sk-acme-platform-key")
    return make_provider("acme", api_key_env="ACME_KEY")


def _code(user: object, model_id: str) -> str:
    try:
        route_for(user=user, model_id=model_id)  # type: ignore[arg-type]
    except RouteError as error:
        return str(error.code)
    return "routed"


@pytest.mark.django_db
def test_a_warm_route_reads_no_catalogue_row(acme: Provider, django_assert_num_queries: object) -> None:
    make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    route_for(user=user, model_id="acme:one")
    with django_assert_num_queries(0):  # type: ignore[operator]
        route = route_for(user=user, model_id="acme:one")
    assert route.candidates[0].provider_model_id == "one-v1"


class _LostRedis:
    def get(self, key: str) -> None:
        raise RedisConnectionError("Redis is gone")


@pytest.mark.django_db
def test_while_redis_is_lost_routes_come_from_the_snapshot_held_and_the_catalog_otherwise(
    acme: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers import catalogcache

    make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    held = catalogcache.catalog_snapshot()
    monkeypatch.setattr(catalogcache, "get_redis_connection", lambda alias: _LostRedis())

    assert catalogcache.catalog_snapshot() is held  # a saved reply is still priced and billed
    catalogcache.catalog_forget()
    assert _code(user, "acme:one") == "routed"  # none held: read from the database
    monkeypatch.undo()
    monkeypatch.setenv("ACME_KEY", "sk-acme-platform-key")
    assert catalogcache.catalog_snapshot().version != b"\x00unread"  # Redis back: read afresh


# --- The version read ahead, on the loop's Redis line ---------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_the_version_read_on_the_loop_is_the_one_a_change_set() -> None:
    await sync_to_async(catalog_changed)()
    held = await sync_to_async(lambda: get_redis_connection("default").get(VERSION_KEY))()
    assert held is not None
    assert await catalog_version_read() == held


@pytest.mark.django_db
def test_a_version_handed_in_spares_the_thread_its_own_read(acme: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    from providers import catalogcache

    current = catalog_snapshot()
    monkeypatch.setattr(catalogcache, "get_redis_connection", lambda alias: _LostRedis())  # any read would fail
    with catalog_version_known(current.version):
        assert catalog_snapshot() is current


@pytest.mark.django_db
def test_a_different_version_handed_in_loads_the_catalog_again(acme: Provider) -> None:
    current = catalog_snapshot()
    make_model("acme:new", (acme, "new-v1"), tiers=(tier_registered_default(),))
    with catalog_version_known(b"another"):
        changed = catalog_snapshot()
    assert changed is not current and changed.version == b"another" and "acme:new" in changed.models


@pytest.mark.django_db
def test_a_version_that_could_not_be_read_ahead_is_asked_of_redis(acme: Provider) -> None:
    catalog_changed()
    held = get_redis_connection("default").get(VERSION_KEY)
    with catalog_version_known(UNREAD):
        assert catalog_snapshot().version == held


@pytest.mark.django_db
def test_the_models_a_user_may_pick_read_only_their_own_byok_models(
    acme: Provider, django_assert_num_queries: object
) -> None:
    make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    models_available_to(user)
    with django_assert_num_queries(1):  # type: ignore[operator]
        options = models_available_to(user)
    assert [option.model_id for option in options] == ["acme:one"]


@pytest.mark.django_db
def test_a_saved_change_is_routed_by_the_next_call(acme: Provider) -> None:
    model = make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    assert _code(user, "acme:one") == "routed"
    model.enabled = False
    model.save()
    assert _code(user, "acme:one") == RouteErrorCode.MODEL_DISABLED


@pytest.mark.django_db
def test_the_admins_bulk_disable_is_routed_by_the_next_call(acme: Provider) -> None:
    make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    assert _code(user, "acme:one") == "routed"
    request = RequestFactory().post("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    request._messages = type("Messages", (), {"add": lambda *args, **kwargs: None})()  # type: ignore[attr-defined]
    ModelAdmin(Model, site).disable(request, Model.objects.filter(model_id="acme:one"))
    assert _code(user, "acme:one") == RouteErrorCode.MODEL_DISABLED


@pytest.mark.django_db
def test_a_tier_losing_a_model_is_refused_by_the_next_call(acme: Provider) -> None:
    model = make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    user = UserFactory()
    assert _code(user, "acme:one") == "routed"
    TierAccess.objects.get(tier=tier_registered_default()).allowed_models.remove(model)
    assert _code(user, "acme:one") == RouteErrorCode.NOT_IN_TIER


# --- Two processes ------------------------------------------------------------------------------
ROUTER = """
import json, sys
import django
django.setup()
from accounts.models import User
from providers.routing import RouteError, route_for
user = User.objects.get(pk=int(sys.argv[1]))
for line in sys.stdin:
    try:
        route = route_for(user=user, model_id=line.strip())
        answer = [candidate.provider_model_id for candidate in route.candidates]
    except RouteError as error:
        answer = str(error.code)
    print(json.dumps(answer), flush=True)
"""


@pytest.fixture
def other_process(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    user_id = request.getfixturevalue("routed_user").pk
    process = subprocess.Popen(
        [sys.executable, "-c", ROUTER, str(user_id)],
        env=process_environment(ACME_KEY="sk-acme-platform-key"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    process.kill()
    process.wait(timeout=10)


@pytest.fixture
def routed_user(acme: Provider) -> object:
    make_model("acme:one", (acme, "one-v1"), tiers=(tier_registered_default(),))
    return UserFactory()


def _ask(process: subprocess.Popen[str], model_id: str) -> object:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(model_id + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_here_is_routed_by_the_next_turn_of_another_process(
    routed_user: object, other_process: subprocess.Popen[str]
) -> None:
    assert _ask(other_process, "acme:one") == ["one-v1"]  # its snapshot is loaded and warm

    Model.objects.filter(model_id="acme:one").update(enabled=False)
    catalog_changed()  # what the admin's bulk actions do after update()
    assert _ask(other_process, "acme:one") == RouteErrorCode.MODEL_DISABLED

    Model.objects.filter(model_id="acme:one").update(enabled=True)
    catalog_changed()
    assert _ask(other_process, "acme:one") == ["one-v1"]
    route = Model.objects.get(model_id="acme:one").routes.get()
    route.provider_model_id = "one-v2"
    route.save()  # a signal, committed at once (autocommit)
    assert _ask(other_process, "acme:one") == ["one-v2"]

    TierAccess.objects.get(tier=tier_registered_default()).allowed_models.clear()
    assert _ask(other_process, "acme:one") == RouteErrorCode.NOT_IN_TIER
