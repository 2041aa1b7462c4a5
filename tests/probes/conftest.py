from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from agent.probes import _REGISTRY
from agent.probes.base import Limits, ProbeOutcome
from protos.results import data_to_dict, probe_result_to_pb


def _kept(sent: Any, back: Any) -> bool:
    """Whether ``back`` (the wire's typed data read back) holds everything of ``sent`` (what
    the probe reported): the same values, lists as lists, a None an absent field."""
    if isinstance(sent, Mapping):
        return isinstance(back, dict) and all(k in back and _kept(v, back[k]) for k, v in sent.items())
    if isinstance(sent, list | tuple):
        return isinstance(back, list) and len(back) == len(sent) and all(map(_kept, sent, back))
    if sent is None:
        return back is None
    return (type(back) is type(sent) and back == sent) or (isinstance(sent, int) and not isinstance(sent, bool) and back == sent)


def fits_the_wire(outcome: ProbeOutcome) -> None:
    """The outcome goes onto the wire's typed ProbeResult (protos/results.py) and comes back
    with every value it had: the contract and the probes agree on every field."""
    m = probe_result_to_pb(
        kind=outcome.kind, target=outcome.target, failure=outcome.failure,
        failure_detail=outcome.failure_detail, duration_s=outcome.duration_s, data=outcome.data,
    )  # fmt: skip
    if outcome.data:
        back = data_to_dict(getattr(m, outcome.kind))
        assert _kept(dict(outcome.data), back), (dict(outcome.data), back)


@pytest.fixture(autouse=True)
def every_outcome_fits_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every probe test is also a test of the wire contract: each outcome a probe gives,
    against the real local servers of these tests, must survive the typed ProbeResult."""
    for kind in _REGISTRY.values():
        original = kind.run

        async def checked(spec: Any, limits: Limits, _run: Any = original) -> ProbeOutcome:
            outcome: ProbeOutcome = await _run(spec, limits)
            fits_the_wire(outcome)
            return outcome

        monkeypatch.setattr(kind, "run", checked)


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
