from __future__ import annotations

from config.redis_urls import celery_redis_url, redacted, redis_url_with_db


def test_a_tcp_url_gets_another_database_in_its_path() -> None:
    assert redis_url_with_db("redis://:secret@cache:6379/0", 15) == "redis://:secret@cache:6379/15"


def test_a_socket_url_gets_another_database_in_its_query() -> None:
    assert redis_url_with_db("unix:///srv/redis.sock?db=0", 15) == "unix:///srv/redis.sock?db=15"


def test_celery_spells_a_socket_url_the_kombu_way() -> None:
    assert celery_redis_url("unix:///srv/redis.sock?db=3") == "redis+socket:///srv/redis.sock?virtual_host=3"


def test_celery_takes_a_tcp_url_as_it_is() -> None:
    assert celery_redis_url("redis://cache:6379/2") == "redis://cache:6379/2"


def test_a_redacted_url_hides_the_password_only() -> None:
    assert redacted("postgres://arbor:hunter2@db:5432/arbor") == "postgres://arbor:***@db:5432/arbor"
    assert redacted("redis://cache:6379/0") == "redis://cache:6379/0"
