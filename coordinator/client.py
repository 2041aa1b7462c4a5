"""A small typed client for the job API; the CLI is built on it and scripts can import it.

    from coordinator.client import VantageClient
    with VantageClient("127.0.0.1:50051") as client:
        job = client.submit("http", ["https://example.org/"], regions=["de-fra"])
        for event in client.watch(job.job_id, follow=True):
            ...

Errors are ``grpc.RpcError`` with the server's status code and a message that names the
field (INVALID_ARGUMENT), or UNAUTHENTICATED / NOT_FOUND / UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from common.defaults import DEFAULT_COORDINATOR
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

# DEFAULT_COORDINATOR is common.defaults' (vantage agent and vantage health dial it too).
__all__ = ["DEFAULT_COORDINATOR", "VantageClient"]


class VantageClient:
    def __init__(
        self,
        address: str = DEFAULT_COORDINATOR,
        *,
        token: str | None = None,
        ca_file: Path | None = None,
        tls: bool = False,
        timeout_s: float = 15.0,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        """``client_cert``: (certificate chain, private key) PEM files, for a coordinator
        with mutual TLS (``--client-ca``)."""
        self.address = address
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if ca_file is not None or tls:
            roots = ca_file.read_bytes() if ca_file is not None else None
            creds = grpc.ssl_channel_credentials(
                root_certificates=roots,
                private_key=client_cert[1].read_bytes() if client_cert else None,
                certificate_chain=client_cert[0].read_bytes() if client_cert else None,
            )
            self._channel = grpc.secure_channel(address, creds)
        else:
            self._channel = grpc.insecure_channel(address)
        self.jobs = pb_grpc.JobServiceStub(self._channel)
        self.admin = pb_grpc.AdminServiceStub(self._channel)

    def __enter__(self) -> VantageClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def submit(
        self,
        kind: str,
        targets: Sequence[str],
        *,
        options: Mapping[str, str] | None = None,
        regions: Sequence[str] = (),
        countries: Sequence[str] = (),
        asns: Sequence[int] = (),
        labels: Mapping[str, str] | None = None,
        agent_ids: Sequence[str] = (),
        per_region: int = 0,
        every_s: float = 0.0,
        count: int = 0,
        until: float = 0.0,
        spread_s: float = 0.0,
        timeout_s: float = 0.0,
    ) -> pb.Job:
        spec = pb.JobSpec(
            kind=kind,
            targets=list(targets),
            options=dict(options or {}),
            selector=pb.Selector(
                regions=list(regions), countries=list(countries), asns=list(asns),
                labels=dict(labels or {}), agent_ids=list(agent_ids), per_region=per_region,
            ),
            every_s=every_s,
            count=count,
            until=until,
            spread_s=spread_s,
            timeout_s=timeout_s,
        )
        return self.submit_spec(spec)

    def submit_spec(self, spec: pb.JobSpec) -> pb.Job:
        job: pb.Job = self.jobs.SubmitJob(
            pb.SubmitJobRequest(spec=spec), metadata=self._metadata, timeout=self.timeout_s
        )
        return job

    def get(self, job_id: str) -> pb.Job:
        job: pb.Job = self.jobs.GetJob(
            pb.GetJobRequest(job_id=job_id), metadata=self._metadata, timeout=self.timeout_s
        )
        return job

    def list_jobs(self, limit: int = 100) -> list[pb.Job]:
        resp = self.jobs.ListJobs(
            pb.ListJobsRequest(limit=limit), metadata=self._metadata, timeout=self.timeout_s
        )
        return list(resp.jobs)

    def cancel(self, job_id: str) -> pb.Job:
        job: pb.Job = self.jobs.CancelJob(
            pb.CancelJobRequest(job_id=job_id), metadata=self._metadata, timeout=self.timeout_s
        )
        return job

    def watch(self, job_id: str, *, follow: bool = True) -> Iterator[pb.WatchJobEvent]:
        """Stored results, then (with ``follow``) new ones until the job ends."""
        stream = self.jobs.WatchJob(
            pb.WatchJobRequest(job_id=job_id, follow=follow), metadata=self._metadata
        )
        yield from stream

    def agents(self, *, page_size: int = 500, max_pages: int = 10_000) -> list[pb.AgentInfo]:
        """Every agent, a page at a time (at most ``max_pages`` pages)."""
        out: list[pb.AgentInfo] = []
        token = ""
        for _ in range(max_pages):
            resp = self.jobs.ListAgents(
                pb.ListAgentsRequest(page_size=page_size, page_token=token),
                metadata=self._metadata, timeout=self.timeout_s,
            )  # fmt: skip
            out.extend(resp.agents)
            token = resp.next_page_token
            if not token:
                break
        return out

    def verdicts(self) -> pb.GetVerdictsResponse:
        resp: pb.GetVerdictsResponse = self.jobs.GetVerdicts(
            pb.GetVerdictsRequest(), metadata=self._metadata, timeout=self.timeout_s
        )
        return resp

    # -- administration (the admin role) ------------------------------------------------

    def enroll_agent(
        self, agent_id: str, region: str, *, country: str = "", asn: int = 0, labels: Mapping[str, str] | None = None
    ) -> pb.EnrollAgentResponse:
        """Enrol an agent; the answer's ``token`` is shown this once."""
        req = pb.EnrollAgentRequest(agent_id=agent_id, region=region, country=country, asn=asn, labels=dict(labels or {}))
        resp: pb.EnrollAgentResponse = self.admin.EnrollAgent(req, metadata=self._metadata, timeout=self.timeout_s)
        return resp

    def revoke_agent(self, agent_id: str) -> pb.Enrollment:
        resp: pb.Enrollment = self.admin.RevokeAgent(
            pb.RevokeAgentRequest(agent_id=agent_id), metadata=self._metadata, timeout=self.timeout_s
        )
        return resp

    def enrollments(self) -> list[pb.Enrollment]:
        resp = self.admin.ListEnrollments(pb.ListEnrollmentsRequest(), metadata=self._metadata, timeout=self.timeout_s)
        return list(resp.enrollments)

    def add_token(
        self, name: str, role: str, *, max_active_jobs: int = 0, max_tasks_per_hour: int = 0,
        max_bytes_per_hour: int = 0,
    ) -> pb.AddTokenResponse:
        """Make an API token; the answer's ``secret`` is shown this once."""
        req = pb.AddTokenRequest(
            name=name, role=role, max_active_jobs=max_active_jobs, max_tasks_per_hour=max_tasks_per_hour,
            max_bytes_per_hour=max_bytes_per_hour,
        )
        resp: pb.AddTokenResponse = self.admin.AddToken(req, metadata=self._metadata, timeout=self.timeout_s)
        return resp

    def revoke_token(self, name: str) -> pb.ApiToken:
        resp: pb.ApiToken = self.admin.RevokeToken(
            pb.RevokeTokenRequest(name=name), metadata=self._metadata, timeout=self.timeout_s
        )
        return resp

    def tokens(self) -> list[pb.ApiToken]:
        resp = self.admin.ListTokens(pb.ListTokensRequest(), metadata=self._metadata, timeout=self.timeout_s)
        return list(resp.tokens)

    def audit(self, since: float = 0.0, limit: int = 0) -> list[pb.AuditRecord]:
        resp = self.admin.ListAudit(
            pb.ListAuditRequest(since=since, limit=limit), metadata=self._metadata, timeout=self.timeout_s
        )
        return list(resp.records)
