"""Checks made before serving or testing, so a wrong URL or a busy port ends in one clear line."""

from __future__ import annotations

import errno
import socket
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.redis_urls import redacted
from config.startup import StartupError

CONNECT_TIMEOUT_SECONDS = 5


def _first_line(error: BaseException) -> str:
    """The line that says what failed (psycopg adds hints on the lines after it)."""
    text = str(error).strip().splitlines()
    return text[0].strip() if text else type(error).__name__


def database_problem(url: str) -> str | None:
    """Connects the way the app will (Django's connection parameters, with its connect_timeout),
    but on a connection of its own: opening Django's would start its pool, whose workers log
    every failed reconnect after this has already said what is wrong."""
    import psycopg
    from django.db import connection

    try:
        psycopg.connect(**connection.get_connection_params()).close()
    except psycopg.Error as error:
        password = connection.settings_dict.get("PASSWORD") or "\0"
        reason = _first_line(error).replace(password, "***")
        return f"cannot connect to the database at DATABASE_URL={redacted(url)}: {reason}"
    return None


def redis_problem(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
        )
        client.retry = Retry(NoBackoff(), 0)
        client.ping()
    except (redis.RedisError, ValueError, OSError) as error:
        return f"cannot reach Redis at REDIS_URL={redacted(url)}: {_first_line(error)}"
    return None


def port_problem(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use: stop what listens there or set ARBOR_PORT"
            return f"cannot listen on {host}:{port} ({error.strerror}): check ARBOR_HOST and ARBOR_PORT"
    return None


def require_services(settings: Any) -> None:
    """Raise StartupError naming every unreachable service."""
    problems = [
        database_problem(settings.DATABASE_URL),
        redis_problem(settings.REDIS_URL),
    ]
    found = [problem for problem in problems if problem]
    if found:
        raise StartupError("\n".join(found))
