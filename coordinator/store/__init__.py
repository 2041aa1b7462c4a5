"""Durable state behind one interface that speaks in the coordinator's records.

The coordinator hands a store lists of changes (``coordinator/store/records.py``) and
reads back jobs, tasks, agents and measurements; no SQL leaves an engine. Engines:

- ``sqlite``: a file path (the default, ``vantage.db``). One writer thread batches every
  queued write into one transaction (``coordinator/store/sqlite.py``).
- ``postgres``: ``postgresql://user:pass@host:port/dbname`` (PostgreSQL 15 or later), for a
  fleet of coordinators on one database (``coordinator/store/postgres.py``).

``open_store(db)`` picks the engine from ``--db``. Every engine keeps the same promises,
held by one contract suite (tests/unit/test_store_contract.py):

- a write of several changes commits all of them or none, in order;
- ``write`` returns once committed (an ack to an agent follows it, so nothing acked is
  lost on a crash); ``write_nowait`` keeps queue order with every other write;
- one measurement per task id, whoever sends it again;
- the schema is migrated at open, versioned, and safe when two coordinators open at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from coordinator.model import ApiToken, AuditEntry, Enrollment, Job, Task
from coordinator.store.records import (
    AgentHello,
    AgentSeen,
    Change,
    JobProgress,
    Pruned,
    PutApiToken,
    PutAudit,
    PutEnrollment,
    PutJob,
    PutResult,
    PutTask,
    RecentResult,
    StoredAgent,
    TaskLookup,
    TaskProgress,
)
from coordinator.store.sqlite import SQLiteStore

__all__ = [
    "AgentHello",
    "AgentSeen",
    "Change",
    "JobProgress",
    "Pruned",
    "PutApiToken",
    "PutAudit",
    "PutEnrollment",
    "PutJob",
    "PutResult",
    "PutTask",
    "RecentResult",
    "SQLiteStore",
    "SharedStore",
    "Store",
    "StoreError",
    "StoredAgent",
    "TaskLookup",
    "TaskProgress",
    "open_store",
]


class StoreError(Exception):
    """The store could not be opened or its schema not migrated; the message says why."""


class Store(Protocol):
    """What the coordinator needs from a store."""

    engine: str
    safe_url: str  # the --db to show in logs and errors: never a password
    shared: bool  # several coordinators may open it at once (a fleet: coordinator/fleet.py)

    async def write(self, changes: Sequence[Change]) -> None: ...
    def write_nowait(
        self, changes: Sequence[Change], on_error: Callable[[BaseException, int], None]
    ) -> None: ...
    async def flush(self) -> None: ...
    async def load_jobs(self) -> list[Job]: ...
    async def load_open_tasks(self) -> list[Task]: ...
    async def load_agents(self) -> list[StoredAgent]: ...
    async def load_credentials(self) -> tuple[list[Enrollment], list[ApiToken]]: ...
    async def read_audit(self, since: float, *, limit: int) -> list[AuditEntry]: ...
    def iter_results(
        self, job_id: str, *, page: int = 500
    ) -> AsyncIterator[tuple[bytes, float]]: ...
    async def recent_results(self, since: float, *, limit: int) -> list[RecentResult]: ...
    async def lookup_tasks(self, task_ids: Sequence[str]) -> list[TaskLookup]: ...
    async def count_results(self, job_id: str | None = None) -> int: ...
    async def open(self) -> None: ...
    async def maintain(self, now: float) -> None: ...
    async def prune(self, before: float) -> Pruned: ...
    async def close(self) -> None: ...


class SharedStore(Store, Protocol):
    """A store a fleet of coordinators shares (``shared`` is True)."""

    def lease(self) -> Any: ...  # the fleet's lease (coordinator/fleet.py: LeaseStore)
    def fence(self, holder: str, epoch: int) -> None: ...


#: Query parameters of a libpq URL that hold secrets.
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def redact(url: str) -> str:
    """``url`` without any password, in every form libpq takes: ``user:pass@host``, and
    ``?password=`` or ``?sslpassword=`` among the parameters (each becomes ``***``). For
    the start-up line, logs and errors. A string that does not parse as a URL is shown as
    its scheme only."""
    import urllib.parse

    scheme, sep, rest = url.partition("://")
    if sep:
        # libpq reads the credentials up to the last "@" before the path; a password may
        # hold "?" or "#", which would end urlsplit's netloc early and leak the rest
        authority = rest.split("/", 1)[0]
        if "@" in authority:
            userinfo, _, hostport = authority.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            masked = f"{user}:***@{hostport}" if colon else f"{userinfo}@{hostport}"
            url = f"{scheme}://{masked}{rest[len(authority):]}"
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        query = parts.query
        if query:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            query = "&".join(
                f"{k}=***" if k.lower() in _SECRET_PARAMS else f"{k}={urllib.parse.quote(v, safe='/:')}"
                for k, v in pairs
            )
        if "://" not in url:
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:
        return url.partition("://")[0] + "://***"


def open_store(db: str) -> Store:
    """The engine ``db`` names, not yet opened (``await store.open()`` connects and
    migrates): a ``postgresql://`` URL, or a file path (SQLite). Raises StoreError naming
    ``--db``; a password in the URL is never repeated."""
    import sqlite3

    if "://" in db:
        scheme = db.partition("://")[0]
        shown = redact(db)
        if scheme not in ("postgresql", "postgres"):
            raise StoreError(
                f"--db {shown}: unknown engine {scheme!r}; give a file path (SQLite) or "
                "postgresql://user@host:port/dbname (its password from PGPASSFILE or --db-file)"
            )
        try:
            from coordinator.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"--db {shown}: the PostgreSQL engine needs psycopg ({exc.name} is missing): "
                "pip install 'vantage[postgres]'"
            ) from None
        return PostgresStore(db)
    try:
        return SQLiteStore(db)
    except (sqlite3.Error, OSError) as exc:  # incl. a schema newer than this vantage
        raise StoreError(f"--db {db}: {exc}") from exc
