"""The PostgreSQL engine's schema: versioned migrations, daily partitions of the
measurements, and each store change's statement.

Migrations run at open inside one transaction that first takes an advisory lock, so any
number of coordinators starting at once apply each migration exactly once; the versions
applied are rows of ``vantage_schema``.

``measurements`` is partitioned by ``received_at`` (the coordinator's clock, seconds since
the epoch), one partition per UTC day, named ``measurements_dYYYYMMDD``, created a few
days ahead; a DEFAULT partition catches anything else, so an insert never fails for want
of a partition. ``--retain`` drops whole partitions (cheap: no row-by-row delete, no
bloat) and deletes only what is left in partly expired ones. A partitioned table cannot
hold a unique index without the partition key, so one-result-per-task is the primary key
of ``result_ids`` instead, checked in the same statement that inserts the result.
"""

from __future__ import annotations

import datetime as dt

from coordinator.model import JobState, TaskState
from coordinator.store.records import (
    AgentHello,
    AgentSeen,
    JobProgress,
    PutApiToken,
    PutAudit,
    PutEnrollment,
    PutJob,
    PutResult,
    PutTask,
    TaskProgress,
)

# Any constant the fleet agrees on: the advisory lock taken by migrations and partitioning.
LOCK_KEY = 0x76616E74  # "vant"
DAY_S = 86_400
DAYS_AHEAD = 3

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE agents (
        agent_id text PRIMARY KEY, region text NOT NULL, country text, asn bigint,
        labels text, version text, kinds text, first_seen double precision,
        last_seen double precision, peer text
    );
    CREATE TABLE jobs (
        job_id text PRIMARY KEY, spec text NOT NULL, state text NOT NULL,
        created_at double precision, finished_at double precision,
        next_round_at double precision, rounds_done bigint, tasks_created bigint,
        tasks_expected bigint, tasks_done bigint, tasks_failed bigint, reason text
    );
    CREATE TABLE tasks (
        task_id text PRIMARY KEY, job_id text NOT NULL, round bigint, target text,
        agent_id text, region text, state text NOT NULL, due_at double precision,
        deadline double precision, assigned_at double precision, attempts bigint, reason text
    );
    CREATE INDEX tasks_open ON tasks (state) WHERE state IN ('pending', 'assigned');
    CREATE INDEX tasks_due ON tasks (due_at);
    CREATE TABLE result_ids (task_id text PRIMARY KEY, received_at double precision NOT NULL);
    CREATE INDEX result_ids_received ON result_ids (received_at);
    CREATE SEQUENCE measurements_seq;
    CREATE TABLE measurements (
        seq bigint NOT NULL DEFAULT nextval('measurements_seq'),
        task_id text NOT NULL, job_id text NOT NULL, agent_id text NOT NULL, region text,
        kind text, target text, failure text, started_at double precision,
        finished_at double precision, received_at double precision NOT NULL,
        result bytea NOT NULL  -- the serialized vantage.v1.TaskResult, whole
    ) PARTITION BY RANGE (received_at);
    CREATE TABLE measurements_default PARTITION OF measurements DEFAULT;
    CREATE INDEX measurements_job ON measurements (job_id, seq);
    CREATE INDEX measurements_received ON measurements (received_at);
    """,
    # v2, the fleet: the scheduling lease (postgres_lease.py), and the id of the
    # transaction that last wrote each measurement and task, so a coordinator can read
    # what other coordinators committed exactly once (postgres_tail.py). Rows from before
    # carry 0: older than any transaction.
    """
    CREATE TABLE vantage_lease (
        name text PRIMARY KEY, holder text NOT NULL, address text NOT NULL,
        epoch bigint NOT NULL, expires_at timestamptz NOT NULL
    );
    ALTER TABLE measurements ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
    ALTER TABLE measurements ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
    CREATE INDEX measurements_job_tx ON measurements (job_id, tx);
    ALTER TABLE tasks ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
    ALTER TABLE tasks ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
    CREATE INDEX tasks_job_tx ON tasks (job_id, tx);
    """,
    # v3, trust (coordinator/access.py): who submitted a job, enrolled agents, API tokens
    # (hashes only) and the audit record.
    """
    ALTER TABLE jobs ADD COLUMN owner text NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN hourly_cost bigint NOT NULL DEFAULT 0;
    CREATE TABLE enrollments (
        agent_id text PRIMARY KEY, token_hash text NOT NULL, region text NOT NULL, country text,
        asn bigint, labels text, created_at double precision, revoked_at double precision,
        created_by text
    );
    CREATE TABLE api_tokens (
        name text PRIMARY KEY, token_hash text NOT NULL, role text NOT NULL,
        max_active_jobs bigint, max_tasks_per_hour bigint, created_at double precision,
        revoked_at double precision, created_by text
    );
    CREATE TABLE audit (
        seq bigserial PRIMARY KEY, at double precision NOT NULL, actor text NOT NULL,
        action text NOT NULL, subject text, detail text
    );
    CREATE INDEX audit_at ON audit (at);
    """,
    # v4, typed results: where each was measured (TaskResult.place), beside its region. A
    # constant default: no rewrite of the partitions.
    """
    ALTER TABLE measurements ADD COLUMN country text NOT NULL DEFAULT '';
    ALTER TABLE measurements ADD COLUMN asn bigint NOT NULL DEFAULT 0;
    """,
    # v5, byte quotas (coordinator/quotas.py)
    """
    ALTER TABLE api_tokens ADD COLUMN max_bytes_per_hour bigint NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
FINISHED_TASKS = [s.value for s in TaskState if s.finished]
FINISHED_JOBS = [s.value for s in JobState if s.finished]

SQL: dict[type, str] = {
    PutJob: (
        "INSERT INTO jobs VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (job_id) DO UPDATE SET "
        "spec=excluded.spec, state=excluded.state, created_at=excluded.created_at, "
        "finished_at=excluded.finished_at, next_round_at=excluded.next_round_at, "
        "rounds_done=excluded.rounds_done, tasks_created=excluded.tasks_created, "
        "tasks_expected=excluded.tasks_expected, tasks_done=excluded.tasks_done, "
        "tasks_failed=excluded.tasks_failed, reason=excluded.reason, owner=excluded.owner, "
        "hourly_cost=excluded.hourly_cost"
    ),
    JobProgress: (
        "UPDATE jobs SET state=%s, finished_at=%s, next_round_at=%s, rounds_done=%s, "
        "tasks_created=%s, tasks_expected=%s, tasks_done=%s, tasks_failed=%s, reason=%s "
        "WHERE job_id=%s"
    ),
    PutTask: (
        "INSERT INTO tasks VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (task_id) DO UPDATE SET "
        "tx=pg_current_xact_id(), "
        "job_id=excluded.job_id, round=excluded.round, target=excluded.target, "
        "agent_id=excluded.agent_id, region=excluded.region, state=excluded.state, "
        "due_at=excluded.due_at, deadline=excluded.deadline, assigned_at=excluded.assigned_at, "
        "attempts=excluded.attempts, reason=excluded.reason"
    ),
    TaskProgress: (
        "UPDATE tasks SET agent_id=%s, region=%s, state=%s, assigned_at=%s, attempts=%s, reason=%s, "
        "tx=pg_current_xact_id() WHERE task_id=%s"
    ),
    AgentHello: (
        "INSERT INTO agents VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (agent_id) DO UPDATE SET "
        "region=excluded.region, country=excluded.country, asn=excluded.asn, "
        "labels=excluded.labels, version=excluded.version, kinds=excluded.kinds, "
        "last_seen=GREATEST(agents.last_seen, excluded.last_seen), peer=excluded.peer"
    ),
    AgentSeen: "UPDATE agents SET last_seen=GREATEST(last_seen, %s) WHERE agent_id=%s",
    # Stored only when its task id is new to result_ids, in one statement.
    PutResult: (
        "WITH v (task_id, job_id, agent_id, region, kind, target, failure, started_at, "
        "finished_at, received_at, result, country, asn) AS (VALUES (%s::text, %s::text, "
        "%s::text, %s::text, %s::text, %s::text, %s::text, %s::float8, %s::float8, %s::float8, "
        "%s::bytea, %s::text, %s::bigint)), "
        "fresh AS (INSERT INTO result_ids SELECT task_id, received_at FROM v "
        "ON CONFLICT (task_id) DO NOTHING RETURNING task_id) "
        "INSERT INTO measurements (task_id, job_id, agent_id, region, kind, target, failure, "
        "started_at, finished_at, received_at, result, country, asn) "
        "SELECT v.* FROM v JOIN fresh USING (task_id)"
    ),
    PutEnrollment: (
        "INSERT INTO enrollments VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (agent_id) DO UPDATE SET "
        "token_hash=excluded.token_hash, region=excluded.region, country=excluded.country, "
        "asn=excluded.asn, labels=excluded.labels, created_at=excluded.created_at, "
        "revoked_at=excluded.revoked_at, created_by=excluded.created_by"
    ),
    PutApiToken: (
        "INSERT INTO api_tokens VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO UPDATE SET "
        "token_hash=excluded.token_hash, role=excluded.role, max_active_jobs=excluded.max_active_jobs, "
        "max_tasks_per_hour=excluded.max_tasks_per_hour, created_at=excluded.created_at, "
        "revoked_at=excluded.revoked_at, created_by=excluded.created_by, "
        "max_bytes_per_hour=excluded.max_bytes_per_hour"
    ),
    PutAudit: "INSERT INTO audit (at, actor, action, subject, detail) VALUES (%s,%s,%s,%s,%s)",
}


def day_of(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).date()


def day_start(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def partition_name(day: dt.date) -> str:
    return f"measurements_d{day:%Y%m%d}"


def partition_day(name: str) -> dt.date | None:
    """The day of a partition named by ``partition_name``; None for any other table."""
    if not name.startswith("measurements_d") or len(name) != len("measurements_d") + 8:
        return None
    try:
        return dt.datetime.strptime(name[-8:], "%Y%m%d").date()
    except ValueError:
        return None


def partition_ddl(day: dt.date) -> str:
    start = day_start(day)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF measurements "
        f"FOR VALUES FROM ({start!r}) TO ({start + DAY_S!r})"
    )


# The hot changes, many per batch, as one statement over arrays (``unnest``) instead of
# one statement per row: (statement, the row field that keys it, keep the first or the
# last row of a key). Rows are deduplicated by key first, so the outcome is that of
# applying them one by one in order: the last absolute update of a task wins; the first
# result of a task id wins, as its one-per-task rule says.
BULK: dict[type, tuple[str, int, str]] = {
    PutResult: (
        "WITH v AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[], %s::float8[], "
        "%s::bytea[], %s::text[], %s::bigint[]) AS v (task_id, job_id, agent_id, region, kind, "
        "target, failure, started_at, finished_at, received_at, result, country, asn)), "
        "fresh AS (INSERT INTO result_ids SELECT task_id, received_at FROM v "
        "ON CONFLICT (task_id) DO NOTHING RETURNING task_id) "
        "INSERT INTO measurements (task_id, job_id, agent_id, region, kind, target, failure, "
        "started_at, finished_at, received_at, result, country, asn) "
        "SELECT v.* FROM v JOIN fresh USING (task_id)",
        0,
        "first",
    ),
    TaskProgress: (
        "UPDATE tasks t SET agent_id = v.agent_id, region = v.region, state = v.state, "
        "assigned_at = v.assigned_at, attempts = v.attempts, reason = v.reason, "
        "tx = pg_current_xact_id() FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::bigint[], "
        "%s::text[], %s::text[]) AS v (agent_id, region, state, assigned_at, attempts, reason, "
        "task_id) WHERE t.task_id = v.task_id",
        6,
        "last",
    ),
}


def bulk(kind: type, rows: list[tuple[object, ...]]) -> tuple[str, list[list[object]]] | None:
    """The one-statement form of ``rows`` of ``kind`` (columns as arrays), or None when
    the kind has none."""
    spec = BULK.get(kind)
    if spec is None:
        return None
    sql, key, keep = spec
    chosen: dict[object, tuple[object, ...]] = {}
    for row in rows:
        if keep == "last" or row[key] not in chosen:
            chosen.pop(row[key], None)  # keep the order of the surviving row
            chosen[row[key]] = row
    columns = [list(col) for col in zip(*chosen.values(), strict=True)]
    return sql, columns
