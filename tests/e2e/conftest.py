"""Shared end-to-end fixtures: local targets and one network of three agents in two
regions, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Network, Targets, local_targets, network

DE = {"de-1", "de-2"}
RU = {"ru-1"}


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    with local_targets(tmp_path_factory.mktemp("targets")) as t:
        yield t


@pytest.fixture(scope="session")
def net(tmp_path_factory: pytest.TempPathFactory, targets: Targets) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("net")) as n:
        n.start_coordinator()
        n.start_agent("de-1", "de")
        n.start_agent("de-2", "de")
        n.start_agent("ru-1", "ru", "--country", "RU", "--asn", "25159")
        n.wait_agents(DE | RU)
        yield n


