from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings.production_checks import production_problems

BASE_DIR = Path(__file__).resolve().parents[2]
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
