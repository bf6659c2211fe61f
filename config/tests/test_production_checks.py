from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings.production_checks import production_problems

BASE_DIR = Path(__file__).resolve().parents[2]
FERNET_KEY = "0Wg3lSqa3dNyB8BbZ0jq2XyU8d1l1w0a2DmdVZ4GrKo="  # a valid Fernet key, made for these tests
GOOD_KEY = "k3Jx9-pQ2mZ7vN1rT8wY4bL6cF0hD5sG_aE3uI9oP2yR7tW1qX"
GOOD = {
    "DATABASE_URL": "postgres://arbor@db/arbor",
    "REDIS_URL": "redis://cache:6379/0",
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "chat.example.com",
}


def test_a_complete_production_environment_has_no_problems() -> None:
    assert production_problems(GOOD) == []


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DEBUG": "1"}, "DEBUG"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "django-insecure-" + GOOD_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"),
        ({"SECRET_ENCRYPTION_KEYS": "not-a-fernet-key"}, "SECRET_ENCRYPTION_KEYS"),
        ({"SECRET_ENCRYPTION_KEYS": f"{FERNET_KEY},{FERNET_KEY[:-4]}"}, "SECRET_ENCRYPTION_KEYS"),
    ],
)
def test_each_unsafe_value_is_one_problem_naming_its_variable(change: dict[str, str], variable: str) -> None:
    problems = production_problems({**GOOD, **change})
    assert len(problems) == 1
    assert problems[0].startswith(variable)
    assert "\n" not in problems[0]


def _check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.production", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_with_one_error_line_per_problem() -> None:
    result = _check_deploy({"DEBUG": "on", "ALLOWED_HOSTS": ""})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(" ")[1] for line in lines] == [
        "DATABASE_URL",
        "REDIS_URL",
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
    ]
    assert all(line.startswith("error: ") for line in lines)


def test_check_deploy_is_clean_under_production_settings() -> None:
    result = _check_deploy(GOOD)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_valid_encryption_keys_newest_first_are_no_problem() -> None:
    older = "cM1fCr6qPzVkLd5s8sC7fY1qk2g3s4t5u6v7w8x9y0E="
    assert production_problems({**GOOD, "SECRET_ENCRYPTION_KEYS": f"{FERNET_KEY},{older}"}) == []


def test_production_refuses_a_malformed_encryption_key_at_start_in_one_line_without_quoting_it() -> None:
    secret = "my-secret-but-not-fernet"
    result = _check_deploy({**GOOD, "SECRET_ENCRYPTION_KEYS": f"{FERNET_KEY},{secret}"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: SECRET_ENCRYPTION_KEYS entry 2 of 2 is not a Fernet key")
    assert secret not in result.stderr
