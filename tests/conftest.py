from __future__ import annotations

import asyncio
import inspect
import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from tests import pgserver
from tests.loopwatch import LoopWatchdog
from tests.pgserver import PgServer

# A callback that holds the loop this long fails the test (see tests/loopwatch.py).
LOOP_BLOCK_THRESHOLD_S = float(os.environ.get("VANTAGE_TEST_LOOP_BLOCK_S", "1.0"))


@pytest.fixture
async def _loop_watchdog() -> AsyncIterator[None]:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=LOOP_BLOCK_THRESHOLD_S)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.stop()
    if watchdog.stalls:
        pytest.fail(
            f"the event loop was blocked for {max(watchdog.stalls):.2f}s "
            f"(threshold {LOOP_BLOCK_THRESHOLD_S}s): blocking work on the loop",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _fail_when_event_loop_blocked(request: pytest.FixtureRequest) -> None:
    """Every async test runs under the loop watchdog (sync tests have no loop to watch)."""
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        return
    if request.node.get_closest_marker("allow_loop_block"):
        return
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "postgres" in callspec.params.values():
        # The session's PostgreSQL server starts (initdb, a second or two) before the
        # watchdog does: its one-off start-up is not the test blocking its loop.
        request.getfixturevalue("pg_server")
    request.getfixturevalue("_loop_watchdog")


def netns_unavailable_reason() -> str | None:
    """Why tests that build network namespaces cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root for ip netns and tc (CI runs as root)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One private PostgreSQL server for the whole run (tests/pgserver.py); each test that
    needs a database asks for ``pg_url``, a fresh database of its own."""
    reason = pgserver.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    return pg_server.create_db()


# The slowest files first: under `scripts/test` each file runs whole on one worker
# (--dist loadfile), and a lab module that started last set the suite's tail.
_SLOW_FIRST = ("tests/lab/", "tests/deploy/test_prometheus_e2e.py", "tests/e2e/test_health.py",
               "tests/e2e/test_fleet.py", "tests/e2e/", "tests/deploy/")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        for i, prefix in enumerate(_SLOW_FIRST):
            if path.startswith(prefix):
                return i
        return len(_SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file stays as written
