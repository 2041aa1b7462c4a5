"""The SQLite engine's schema: versioned migrations, and each store change as a row.

The schema version lives in ``PRAGMA user_version``. ``migrate`` runs at open inside one
``BEGIN IMMEDIATE`` transaction: a second coordinator opening the same file at the same
moment waits for the first, then finds the schema current and does nothing.
"""

from __future__ import annotations

import sqlite3

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

# Version n of the schema is MIGRATIONS[n - 1] applied over version n - 1. Append only.
MIGRATIONS: tuple[str, ...] = (
    # 1: the schema as it was before versioning (so a file from then adopts it as is).
    """
    CREATE TABLE IF NOT EXISTS agents (
        agent_id TEXT PRIMARY KEY, region TEXT NOT NULL, country TEXT, asn INTEGER,
        labels TEXT, version TEXT, kinds TEXT, first_seen REAL, last_seen REAL, peer TEXT
    );
    CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, created_at REAL,
        finished_at REAL, next_round_at REAL, rounds_done INTEGER, tasks_created INTEGER,
        tasks_expected INTEGER, tasks_done INTEGER, tasks_failed INTEGER, reason TEXT
    );
    CREATE TABLE IF NOT EXISTS tasks (
        task_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, round INTEGER, target TEXT,
        agent_id TEXT, region TEXT, state TEXT NOT NULL, due_at REAL, deadline REAL,
        assigned_at REAL, attempts INTEGER, reason TEXT
    );
    CREATE INDEX IF NOT EXISTS tasks_open ON tasks(state) WHERE state IN ('pending', 'assigned');
    CREATE TABLE IF NOT EXISTS measurements (
        task_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, agent_id TEXT NOT NULL, region TEXT,
        kind TEXT, target TEXT, failure TEXT, started_at REAL, finished_at REAL,
        received_at REAL, result BLOB NOT NULL  -- the serialized vantage.v1.TaskResult, whole
    );
    CREATE INDEX IF NOT EXISTS measurements_job ON measurements(job_id);
    """,
    # 2: reading the recent window back at start-up, and --retain, go by time.
    """
    CREATE INDEX IF NOT EXISTS measurements_received ON measurements(received_at);
    CREATE INDEX IF NOT EXISTS tasks_due ON tasks(due_at);
    """,
    # 3: trust (coordinator/access.py): who submitted a job, enrolled agents, API tokens
    # (hashes only) and the audit record.
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN hourly_cost INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE enrollments (
        agent_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, region TEXT NOT NULL, country TEXT,
        asn INTEGER, labels TEXT, created_at REAL, revoked_at REAL, created_by TEXT
    );
    CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY, token_hash TEXT NOT NULL, role TEXT NOT NULL,
        max_active_jobs INTEGER, max_tasks_per_hour INTEGER, created_at REAL, revoked_at REAL,
        created_by TEXT
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, subject TEXT, detail TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    """,
    # 4: typed results: where each was measured (TaskResult.place), beside its region.
    """
    ALTER TABLE measurements ADD COLUMN country TEXT NOT NULL DEFAULT '';
    ALTER TABLE measurements ADD COLUMN asn INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: byte quotas (coordinator/quotas.py)
    """
    ALTER TABLE api_tokens ADD COLUMN max_bytes_per_hour INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
FINISHED_TASKS = tuple(s.value for s in TaskState if s.finished)
FINISHED_JOBS = tuple(s.value for s in JobState if s.finished)

SQL: dict[type, str] = {
    PutJob: "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    JobProgress: (
        "UPDATE jobs SET state=?, finished_at=?, next_round_at=?, rounds_done=?, "
        "tasks_created=?, tasks_expected=?, tasks_done=?, tasks_failed=?, reason=? WHERE job_id=?"
    ),
    PutTask: "INSERT OR REPLACE INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    TaskProgress: (
        "UPDATE tasks SET agent_id=?, region=?, state=?, assigned_at=?, attempts=?, reason=? "
        "WHERE task_id=?"
    ),
    AgentHello: (
        "INSERT INTO agents VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(agent_id) DO UPDATE SET "
        "region=excluded.region, country=excluded.country, asn=excluded.asn, "
        "labels=excluded.labels, version=excluded.version, kinds=excluded.kinds, "
        "last_seen=excluded.last_seen, peer=excluded.peer"
    ),
    AgentSeen: "UPDATE agents SET last_seen=? WHERE agent_id=?",
    PutResult: "INSERT OR IGNORE INTO measurements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    PutEnrollment: "INSERT OR REPLACE INTO enrollments VALUES (?,?,?,?,?,?,?,?,?)",
    PutApiToken: "INSERT OR REPLACE INTO api_tokens VALUES (?,?,?,?,?,?,?,?,?)",
    PutAudit: "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?,?,?,?,?)",
}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file's schema to SCHEMA_VERSION; returns the version found."""
    conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait here
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {found} is newer than this vantage knows ({SCHEMA_VERSION}); "
                "run a newer vantage or another file"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
