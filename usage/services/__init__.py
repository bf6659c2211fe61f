"""Usage writes. `usage_record` is the one call every generation makes when it ends."""

from __future__ import annotations

from usage.services.quotas import AccountDisabled, QuotaExceeded, quota_release, quota_settle, spend_admit
from usage.services.records import cost_of, model_prices, usage_record

__all__ = [
    "AccountDisabled",
    "QuotaExceeded",
    "cost_of",
    "model_prices",
    "quota_release",
    "quota_settle",
    "spend_admit",
    "usage_record",
]
