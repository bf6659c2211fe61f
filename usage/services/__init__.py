"""Usage writes. `model_call_bill` is the one call every generation makes when it ends (it writes
through `usage_record`); `model_text` is how Arbor asks a model for text on its own account."""

from __future__ import annotations

from usage.services.modelcalls import ModelCall, estimated_tokens, model_call_bill, model_text
from usage.services.quotas import AccountDisabled, QuotaExceeded, quota_release, quota_settle, spend_admit
from usage.services.records import cost_of, model_prices, usage_record

__all__ = [
    "AccountDisabled",
    "ModelCall",
    "QuotaExceeded",
    "cost_of",
    "estimated_tokens",
    "model_call_bill",
    "model_prices",
    "model_text",
    "quota_release",
    "quota_settle",
    "spend_admit",
    "usage_record",
]
