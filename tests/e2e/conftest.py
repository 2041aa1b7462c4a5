"""Shared end-to-end fixtures: local targets and one network of three agents in two
regions, started once per engine (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Network, Targets, local_targets, network
from tests.pgserver import PgServer

DE = {"de-1", "de-2"}
RU = {"ru-1"}


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    with local_targets(tmp_path_factory.mktemp("targets")) as t:
        yield t


ENGINES = ["sqlite", "postgres"]


def _db_url(request: pytest.FixtureRequest, engine: str) -> str | None:
    if engine == "sqlite":
        return None
    server: PgServer = request.getfixturevalue("pg_server")  # skips, with the reason, without one
    return server.create_db()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The coordinator's --db for a test's own network: None (SQLite), or a fresh
    PostgreSQL database on the private test server. The end-to-end suite runs on both."""
    return _db_url(request, request.param)


@pytest.fixture(scope="session", params=ENGINES)
def net(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, targets: Targets) -> Iterator[Network]:
    assert targets.ca_file is not None
    ca_dir = targets.ca_file.parent
    with network(tmp_path_factory.mktemp("net"), db_url=_db_url(request, request.param), ca_dir=ca_dir) as n:
        n.start_coordinator()
        n.start_agent("de-1", "de")
        n.start_agent("de-2", "de")
        n.start_agent("ru-1", "ru", "--country", "RU", "--asn", "25159")
        n.wait_agents(DE | RU)
        yield n


