from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.selectors import tier_guest_default, tier_registered_default
from accounts.tests.factories import GuestFactory, UserFactory
from providers.models import Provider, UserByokModel, UserProviderKey, WireProtocol
from providers.routing import RouteError, RouteErrorCode, route_for
from providers.secrets import encrypt_secret
from providers.tests.catalog_fixtures import make_model, make_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> tuple[Provider, Provider]:
    monkeypatch.setenv("ACME_KEY", "sk-acme-platform-key")
    monkeypatch.setenv("SPARE_KEY", "sk-spare-platform-key")
    monkeypatch.setenv("ACME_URL", "http://acme.example/v1")
    acme = make_provider("acme", api_key_env="ACME_KEY", base_url_env="ACME_URL")
    spare = make_provider("spare", protocol=WireProtocol.ANTHROPIC, api_key_env="SPARE_KEY")
    return acme, spare


def _raises(code: RouteErrorCode, **kwargs: object) -> None:
    with pytest.raises(RouteError) as caught:
        route_for(**kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_a_platform_model_routes_to_its_providers_in_priority_order(keyed: tuple[Provider, Provider]) -> None:
    acme, spare = keyed
    make_model("acme:one", (acme, "one-v1"), (spare, "one-on-spare"), tiers=(tier_registered_default(),))
    route = route_for(user=UserFactory(), model_id="acme:one")
    assert [(c.provider, c.protocol, c.provider_model_id) for c in route.candidates] == [
        ("acme", "openai", "one-v1"),
        ("spare", "anthropic", "one-on-spare"),
    ]
    assert route.candidates[0].endpoint.api_key == "sk-acme-platform-key"
    assert route.candidates[0].endpoint.base_url == "http://acme.example/v1"
    assert not route.byok


def test_a_stored_platform_key_is_decrypted_for_the_call(keyed: tuple[Provider, Provider]) -> None:
    stored = make_provider("stored", api_key_env="")
    stored.api_key_encrypted = encrypt_secret("sk-stored-key")
    stored.save()
    make_model("acme:two", (stored, "two"), tiers=(tier_registered_default(),))
    assert route_for(user=UserFactory(), model_id="acme:two").candidates[0].endpoint.api_key == "sk-stored-key"


def test_providers_without_a_key_or_switched_off_are_skipped(keyed: tuple[Provider, Provider]) -> None:
    acme, _ = keyed
    keyless = make_provider("keyless", api_key_env="UNSET_KEY_VARIABLE")
    off = make_provider("off", api_key_env="ACME_KEY", enabled=False)
    make_model("acme:three", (keyless, "x"), (off, "y"), (acme, "z"), tiers=(tier_registered_default(),))
    route = route_for(user=UserFactory(), model_id="acme:three")
    assert [candidate.provider for candidate in route.candidates] == ["acme"]


def test_an_unknown_model_is_refused() -> None:
    _raises(RouteErrorCode.UNKNOWN_MODEL, user=UserFactory(), model_id="acme:nothing")


def test_a_disabled_model_is_refused(keyed: tuple[Provider, Provider]) -> None:
    make_model("acme:old", (keyed[0], "old"), tiers=(tier_registered_default(),), enabled=False)
    _raises(RouteErrorCode.MODEL_DISABLED, user=UserFactory(), model_id="acme:old")


def test_a_model_outside_the_users_tier_is_refused(keyed: tuple[Provider, Provider]) -> None:
    make_model("acme:premium", (keyed[0], "premium"), tiers=(tier_registered_default(),))
    _raises(RouteErrorCode.NOT_IN_TIER, user=GuestFactory(), model_id="acme:premium")
    assert route_for(user=UserFactory(), model_id="acme:premium")


def test_a_model_no_provider_has_a_key_for_is_refused() -> None:
    keyless = make_provider("keyless", api_key_env="UNSET_KEY_VARIABLE")
    make_model("acme:four", (keyless, "four"), tiers=(tier_guest_default(),))
    _raises(RouteErrorCode.NO_CREDENTIALS, user=GuestFactory(), model_id="acme:four")


def test_a_keyless_local_server_needs_its_url_to_be_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = make_provider("ollama", requires_key=False, base_url_env="OLLAMA_BASE_URL")
    make_model("meta:llama", (ollama, "llama3.3"), tiers=(tier_registered_default(),))
    user = UserFactory()
    _raises(RouteErrorCode.NO_BASE_URL, user=user, model_id="meta:llama")
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1")
    route = route_for(user=user, model_id="meta:llama")
    assert route.candidates[0].endpoint.base_url == "http://127.0.0.1:11434/v1"
    assert route.candidates[0].endpoint.api_key == ""


def test_a_byok_model_on_a_platform_provider_uses_the_users_own_key(keyed: tuple[Provider, Provider]) -> None:
    acme, _ = keyed
    user = UserFactory()
    UserProviderKey.objects.create(user=user, provider=acme, api_key_encrypted=encrypt_secret("sk-users-own"))
    UserByokModel.objects.create(user=user, slug="mine", display_name="Mine", provider=acme, provider_model_id="m-1")
    route = route_for(user=user, model_id="byok:mine")
    assert route.byok
    [candidate] = route.candidates
    assert (candidate.provider_model_id, candidate.endpoint.api_key) == ("m-1", "sk-users-own")


def test_a_byok_model_without_the_users_key_is_refused(keyed: tuple[Provider, Provider]) -> None:
    user = UserFactory()
    UserByokModel.objects.create(user=user, slug="mine", display_name="Mine", provider=keyed[0], provider_model_id="m")
    _raises(RouteErrorCode.NO_CREDENTIALS, user=user, model_id="byok:mine")


def test_another_users_byok_model_answers_like_an_unknown_one(keyed: tuple[Provider, Provider]) -> None:
    owner = UserFactory()
    UserProviderKey.objects.create(user=owner, provider=keyed[0], api_key_encrypted=encrypt_secret("sk-owner"))
    UserByokModel.objects.create(user=owner, slug="mine", display_name="Mine", provider=keyed[0], provider_model_id="m")
    _raises(RouteErrorCode.UNKNOWN_MODEL, user=UserFactory(), model_id="byok:mine")


def _demo_model() -> None:
    demo = make_provider("demo", protocol=WireProtocol.DEMO, requires_key=False)
    make_model("arbor:demo", (demo, "arbor-demo"))


def test_the_demo_is_offered_to_anyone_while_no_real_provider_has_a_key() -> None:
    _demo_model()
    make_provider("real", api_key_env="UNSET_KEY_VARIABLE")
    route = route_for(user=GuestFactory(), model_id="arbor:demo")
    assert route.candidates[0].protocol == "demo"


def test_the_demo_goes_away_once_a_real_provider_has_a_key(keyed: tuple[Provider, Provider]) -> None:
    _demo_model()
    _raises(RouteErrorCode.MODEL_DISABLED, user=GuestFactory(), model_id="arbor:demo")
    with override_settings(DEMO_MODEL="on"):
        assert route_for(user=GuestFactory(), model_id="arbor:demo")


def test_the_demo_can_be_switched_off() -> None:
    _demo_model()
    with override_settings(DEMO_MODEL="off"):
        _raises(RouteErrorCode.MODEL_DISABLED, user=GuestFactory(), model_id="arbor:demo")


def _custom_model(user: object, base_url: str) -> None:
    from providers.models import UserCustomProvider

    endpoint = UserCustomProvider.objects.create(user=user, name="home", base_url=base_url)
    UserByokModel.objects.create(
        user=user, slug="home", display_name="Home", custom_provider=endpoint, provider_model_id="llama"
    )


def test_a_byok_model_on_a_users_endpoint_is_called_through_the_guarded_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from providers import urlsafety

    monkeypatch.setattr(urlsafety, "resolve_host", lambda host, port: ["93.184.216.34"])
    user = UserFactory()
    _custom_model(user, "https://llm.example.com/v1")
    [candidate] = route_for(user=user, model_id="byok:home").candidates
    assert candidate.protocol == "openai"
    assert candidate.endpoint.base_url == "https://llm.example.com/v1"
    assert candidate.endpoint.http_client is not None


def test_a_users_endpoint_that_now_resolves_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from providers import urlsafety

    user = UserFactory()
    _custom_model(user, "https://llm.example.com/v1")  # saved while it resolved publicly
    monkeypatch.setattr(urlsafety, "resolve_host", lambda host, port: ["10.0.0.5"])
    _raises(RouteErrorCode.ENDPOINT_REFUSED, user=user, model_id="byok:home")


# --- A key goes to its own provider's URL or nowhere ------------------------------------------
def _ollama_with_users_key(user: object) -> Provider:
    """Seeded like Ollama: OpenAI's wire protocol, its URL only from OLLAMA_BASE_URL."""
    ollama = make_provider("ollama", requires_key=False, base_url_env="OLLAMA_BASE_URL")
    UserProviderKey.objects.create(user=user, provider=ollama, api_key_encrypted=encrypt_secret("sk-ollama-own"))
    UserByokModel.objects.create(user=user, slug="llama", display_name="L", provider=ollama, provider_model_id="l")
    return ollama


def test_a_users_key_for_a_provider_with_no_url_is_not_routed_to_the_sdks_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    user = UserFactory()
    _ollama_with_users_key(user)
    with pytest.raises(RouteError) as caught:
        route_for(user=user, model_id="byok:llama")
    assert caught.value.code == RouteErrorCode.NO_BASE_URL
    assert caught.value.message == "The provider of 'byok:llama' has no URL configured."
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1")
    [candidate] = route_for(user=user, model_id="byok:llama").candidates
    assert (candidate.endpoint.base_url, candidate.endpoint.api_key) == ("http://127.0.0.1:11434/v1", "sk-ollama-own")


def test_a_platform_key_on_a_provider_with_no_url_serves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_KEY", "sk-gateway")
    gateway = make_provider("gateway", base_url="", api_key_env="GATEWAY_KEY")
    make_model("acme:gw", (gateway, "gw"), tiers=(tier_registered_default(),))
    _raises(RouteErrorCode.NO_BASE_URL, user=UserFactory(), model_id="acme:gw")


@pytest.mark.parametrize(
    ("slug", "protocol"),
    [("openai", WireProtocol.OPENAI), ("anthropic", WireProtocol.ANTHROPIC), ("google", WireProtocol.GOOGLE)],
)
def test_only_the_vendor_itself_may_leave_its_url_to_the_sdks_default(
    monkeypatch: pytest.MonkeyPatch, slug: str, protocol: str
) -> None:
    monkeypatch.setenv("VENDOR_KEY", "sk-vendor")
    vendor = make_provider(slug, protocol=protocol, base_url="", api_key_env="VENDOR_KEY")
    impostor = make_provider(f"not-{slug}", protocol=protocol, base_url="", api_key_env="VENDOR_KEY")
    make_model("acme:v", (impostor, "v"), (vendor, "v"), tiers=(tier_registered_default(),))
    [candidate] = route_for(user=UserFactory(), model_id="acme:v").candidates
    assert (candidate.provider, candidate.endpoint.base_url) == (slug, "")
