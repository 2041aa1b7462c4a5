from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from agent.probes.base import Limits


@pytest.fixture
def limits() -> Limits:
    """Tests talk to 127.0.0.1, which the target policy refuses unless told otherwise; their
    CA files lie in temporary directories, so any directory may hold one (as for `vantage
    probe`; the agent's --ca-dir rule has its own tests in test_ca_file.py)."""
    return Limits(allow_private_targets=True, max_timeout_s=30.0, ca_dir="/")


@dataclass(frozen=True)
class TLSMaterial:
    ca_file: str
    server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSMaterial]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "vantage.test", "127.0.0.1")
    directory: Path = tmp_path_factory.mktemp("tls")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    yield TLSMaterial(ca_file=str(ca_file), server_context=context)
