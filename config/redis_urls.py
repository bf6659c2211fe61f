"""One REDIS_URL serves the cache, the channel layer and Celery; these adapt it to each."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit


def redis_url_with_db(url: str, db: int) -> str:
    """The same server, another logical database (`redis://h/3`, `unix:///s.sock?db=3`)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        query["db"] = [str(db)]
        return _socket_url("unix", parts.path, query)
    return urlunsplit(parts._replace(path=f"/{db}"))


def celery_redis_url(url: str) -> str:
    """Kombu spells a unix socket `redis+socket:///path?virtual_host=N`."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    query = parse_qs(parts.query)
    db = query.pop("db", ["0"])[0]
    query["virtual_host"] = [db]
    return _socket_url("redis+socket", parts.path, query)


def _socket_url(scheme: str, path: str, query: dict[str, list[str]]) -> str:
    # By hand: urlunsplit drops the "//" of a URL with no host, which no Redis client accepts.
    return f"{scheme}://{path}?{urlencode(query, doseq=True)}"


def redacted(url: str) -> str:
    """A URL fit for an error message: the password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
