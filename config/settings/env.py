"""The one django-environ reader every settings module uses; `.env` is read when present."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# Embedded servers' data, the development secret key and media live here.
VAR_DIR = Path(env.str("ARBOR_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
