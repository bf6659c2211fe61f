"""The model catalog (who made a model, who serves it, in what order) and users' own keys.

A Model ("creator:model") is separate from the Providers that serve it: ModelProvider rows say
which provider serves it under which provider-side id, in priority order for failover.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

MODEL_ID = RegexValidator(r"^[a-z0-9][a-z0-9-]*:[A-Za-z0-9][A-Za-z0-9._:/@-]*$", "Use creator:model.")
BYOK_SLUG = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$", "Letters, digits and . _ : / @ - only.")


class WireProtocol(models.TextChoices):
    OPENAI = "openai", "OpenAI (and OpenAI-compatible)"
    ANTHROPIC = "anthropic", "Anthropic"
    GOOGLE = "google", "Google Gemini"
    DEMO = "demo", "Offline demo"


class Modality(models.TextChoices):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"


def default_modalities() -> list[str]:
    return [Modality.TEXT]


class Creator(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Provider(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=20, choices=WireProtocol.choices)
    # Not URLField: its validator refuses single-label hosts such as http://ollama:11434/v1.
    base_url = models.CharField(max_length=500, blank=True, help_text="Empty: the vendor's default endpoint.")
    base_url_env = models.CharField(
        max_length=100, blank=True, help_text="An environment variable whose value, when set, overrides the base URL."
    )
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="The environment variable holding the platform key."
    )
    api_key_encrypted = models.TextField(blank=True, help_text="A platform key stored encrypted (set it in the admin).")
    requires_key = models.BooleanField(default=True, help_text="Off for local servers such as Ollama.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def effective_base_url(self) -> str:
        return (os.environ.get(self.base_url_env, "") if self.base_url_env else "") or self.base_url


class Capabilities(models.Model):
    """What a model can do and costs; shared by catalog models and users' BYOK models."""

    display_name = models.CharField(max_length=150)
    input_modalities = ArrayField(
        models.CharField(max_length=10, choices=Modality.choices), default=default_modalities, blank=True
    )
    supports_tools = models.BooleanField(default=False)
    supports_reasoning = models.BooleanField(default=False)
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(default=8_192)

    class Meta:
        abstract = True


class Model(Capabilities):
    model_id = models.CharField(max_length=200, unique=True, validators=[MODEL_ID], help_text="creator:model")
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="models")
    input_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    output_price_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    enabled = models.BooleanField(default=True)
    providers = models.ManyToManyField(Provider, through="ModelProvider", related_name="models")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id"]

    def __str__(self) -> str:
        return self.model_id


class ModelProvider(models.Model):
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="routes")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="routes")
    provider_model_id = models.CharField(max_length=200)
    priority = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model", "priority", "id"]
        constraints = [models.UniqueConstraint(fields=["model", "provider"], name="providers_one_route_per_provider")]

    def __str__(self) -> str:
        return f"{self.model} via {self.provider} ({self.provider_model_id})"


class TierAccess(models.Model):
    """Which platform models a tier may call, and its default. Kept here, not on Tier:
    accounts imports none of the other apps."""

    tier = models.OneToOneField("accounts.Tier", on_delete=models.CASCADE, related_name="model_access")
    allowed_models = models.ManyToManyField(Model, blank=True, related_name="tier_access")
    default_model = models.ForeignKey(Model, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name_plural = "tier access"

    def __str__(self) -> str:
        return f"models of {self.tier}"


# --- Bring your own key --------------------------------------------------------------------
class UserProviderKey(models.Model):
    """A user's own key for a platform provider; used instead of the platform key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="user_keys")
    api_key_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "provider"], name="providers_one_key_per_provider")]

    def __str__(self) -> str:
        return f"{self.user}'s key for {self.provider}"


class UserCustomProvider(models.Model):
    """A user's own OpenAI-compatible endpoint."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="custom_providers")
    name = models.CharField(max_length=100)
    # Checked by providers.urlsafety, not URLField: a self-hoster's http://ollama:11434 is valid.
    base_url = models.CharField(max_length=500)
    api_key_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="providers_custom_provider_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class UserByokModel(Capabilities):
    """A model a user adds on a platform provider (with their key) or on their own endpoint.
    Its id is `byok:<slug>`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_models")
    slug = models.CharField(max_length=150, validators=[BYOK_SLUG])
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    custom_provider = models.ForeignKey(
        UserCustomProvider, null=True, blank=True, on_delete=models.CASCADE, related_name="models"
    )
    provider_model_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "slug"], name="providers_byok_slug_unique"),
            models.CheckConstraint(
                condition=Q(provider__isnull=True, custom_provider__isnull=False)
                | Q(provider__isnull=False, custom_provider__isnull=True),
                name="providers_byok_exactly_one_provider",
            ),
        ]

    def __str__(self) -> str:
        return self.model_id

    @property
    def model_id(self) -> str:
        return f"byok:{self.slug}"
