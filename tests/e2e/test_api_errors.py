"""Bad requests get the right status and a message naming the field; the coordinator
serves normally afterwards. Security basics: tokens, loopback-only without tokens, TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc
from tests.e2e.conftest import DE, RU
from tests.e2e.harness import VANTAGE, Network, Targets, network, wait_for

pytestmark = pytest.mark.e2e

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def spec(**kw: Any) -> pb.JobSpec:
    base: dict[str, Any] = {"kind": "tcp", "targets": ["127.0.0.1:80"]}
    base.update(kw)
    return pb.JobSpec(**base)


BAD_SUBMITS = [
    ("no spec", pb.SubmitJobRequest(), INVALID, "spec: is required"),
    ("no kind", pb.SubmitJobRequest(spec=spec(kind="")), INVALID, "spec.kind: is required"),
    ("unknown kind", pb.SubmitJobRequest(spec=spec(kind="smoke")), INVALID, "spec.kind: unknown probe kind 'smoke'"),
    ("no targets", pb.SubmitJobRequest(spec=spec(targets=[])), INVALID, "spec.targets: at least one"),
    ("malformed target", pb.SubmitJobRequest(spec=spec(targets=["no port here"])), INVALID, "spec.targets[0]"),
    ("port out of range", pb.SubmitJobRequest(spec=spec(targets=["h.example:70000"])), INVALID, "spec.targets[0]"),
    ("bad url", pb.SubmitJobRequest(spec=spec(kind="http", targets=["ftp://x/"])), INVALID, "spec.targets[0]"),
    ("unknown option", pb.SubmitJobRequest(spec=spec(options={"colour": "red"})), INVALID, "spec.options.colour: unknown option"),
    ("bad option value", pb.SubmitJobRequest(spec=spec(kind="throughput", targets=["http://h.example/"], options={"max_seconds": "-1"})), INVALID, "spec.options.max_seconds"),
    ("too many targets", pb.SubmitJobRequest(spec=spec(targets=[f"h{i}.example:80" for i in range(1001)])), INVALID, "more than the limit of 1000"),
    ("duplicate target", pb.SubmitJobRequest(spec=spec(targets=["h.example:80", "h.example:80"])), INVALID, "the same target as spec.targets[0]"),
    ("interval too short", pb.SubmitJobRequest(spec=spec(every_s=0.5, count=3)), INVALID, "spec.every_s: interval 0.5s is below the minimum"),
    ("periodic without end", pb.SubmitJobRequest(spec=spec(every_s=10)), INVALID, "spec.count: a periodic job needs count or until"),
    ("count without interval", pb.SubmitJobRequest(spec=spec(count=3)), INVALID, "spec.every_s: count or until needs an interval"),
    ("until in the past", pb.SubmitJobRequest(spec=spec(every_s=10, until=1.0)), INVALID, "spec.until: is in the past"),
    ("negative spread", pb.SubmitJobRequest(spec=spec(spread_s=-1)), INVALID, "spec.spread_s"),
    ("timeout too long", pb.SubmitJobRequest(spec=spec(timeout_s=10_000)), INVALID, "spec.timeout_s"),
    ("selector matches nothing", pb.SubmitJobRequest(spec=spec(selector=pb.Selector(regions=["mars"]))), INVALID, "spec.selector: matches no connected agent"),
    ("unknown agent id", pb.SubmitJobRequest(spec=spec(selector=pb.Selector(agent_ids=["ghost"]))), INVALID, "spec.selector.agent_ids: no connected agent 'ghost'"),
    ("malformed country", pb.SubmitJobRequest(spec=spec(selector=pb.Selector(countries=["Russia"]))), INVALID, "spec.selector.countries"),
    ("malformed region", pb.SubmitJobRequest(spec=spec(selector=pb.Selector(regions=["bad region!"]))), INVALID, "spec.selector.regions: malformed region"),
]


@pytest.mark.parametrize(("name", "request_", "code", "message"), BAD_SUBMITS, ids=[b[0] for b in BAD_SUBMITS])
def test_bad_submit_is_refused_with_the_field_named(
    net: Network, name: str, request_: pb.SubmitJobRequest, code: grpc.StatusCode, message: str
) -> None:
    with grpc.insecure_channel(net.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitJob(request_, timeout=10)
    assert info.value.code() == code, info.value.details()
    assert message in (info.value.details() or ""), info.value.details()


def test_other_bad_requests_and_service_afterwards(net: Network, targets: Targets) -> None:
    with grpc.insecure_channel(net.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        cases = [
            (lambda: stub.GetJob(pb.GetJobRequest(job_id=""), timeout=5), INVALID, "job_id: is required"),
            (lambda: stub.GetJob(pb.GetJobRequest(job_id="not-a-job"), timeout=5), INVALID, "is not a job id"),
            (lambda: stub.GetJob(pb.GetJobRequest(job_id="0" * 16), timeout=5), grpc.StatusCode.NOT_FOUND, "no job"),
            (lambda: stub.CancelJob(pb.CancelJobRequest(job_id="0" * 16), timeout=5), grpc.StatusCode.NOT_FOUND, "no job"),
            (lambda: stub.ListJobs(pb.ListJobsRequest(limit=5000), timeout=5), INVALID, "limit: at most 1000"),
            (lambda: list(stub.WatchJob(pb.WatchJobRequest(job_id="zz"), timeout=5)), INVALID, "job_id"),
        ]
        for call, code, message in cases:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == code and message in (info.value.details() or ""), info.value.details()
        # An agent stream that does not start with hello is refused.
        agent = pb_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(agent.Connect(iter([pb.AgentMessage(heartbeat=pb.Heartbeat())]), timeout=5))
        assert info.value.code() == INVALID and "hello" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            list(agent.Connect(iter([pb.AgentMessage(hello=pb.Hello(agent_id="x", region=""))]), timeout=5))
        assert info.value.code() == INVALID and "hello.region" in (info.value.details() or "")
        # The country feeds the degraded rule: a two-letter code or nothing.
        with pytest.raises(grpc.RpcError) as info:
            bad = pb.Hello(agent_id="x", region="ru", country="Russia" * 100)
            list(agent.Connect(iter([pb.AgentMessage(hello=bad)]), timeout=5))
        assert info.value.code() == INVALID and "hello.country" in (info.value.details() or "")
        # A finished job cannot be cancelled.
        job = pb_grpc.JobServiceStub(channel).SubmitJob(
            pb.SubmitJobRequest(spec=spec(targets=[f"127.0.0.1:{targets.http_port}"])), timeout=10
        )
        wait_for(lambda: stub.GetJob(pb.GetJobRequest(job_id=job.job_id)).state == pb.JOB_STATE_DONE, 20, "job done")
        with pytest.raises(grpc.RpcError) as info:
            stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=5)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Still serving normally, with every agent still connected.
    with net.client() as c:
        assert {a.agent_id for a in c.agents() if a.connected} >= DE | RU
        ok = c.submit("tcp", [f"127.0.0.1:{targets.http_port}"], regions=["ru"])
        wait_for(lambda: c.get(ok.job_id).state == pb.JOB_STATE_DONE, 20, "a good job after bad ones")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "smoke", "x"], "unknown probe kind"),
        (["submit", "tcp", "x:1", "--every", "soon"], "--every: 'soon' is not a duration"),
        (["submit", "tcp", "x:1", "-o", "novalue"], "--option: 'novalue' is not KEY=VALUE"),
        (["job", "nope"], "INVALID_ARGUMENT: job_id"),
        (["agent", "--region", "bad region!"], "--region"),
        (["coordinator", "--listen", "nowhere"], "--listen"),
    ],
)
def test_cli_errors_are_one_line_exit_2(net: Network, argv: list[str], message: str) -> None:
    out = net.cli(*argv, timeout=30)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_tokens_tls_and_loopback_rules(tmp_path: Path, targets: Targets) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    env = {"VANTAGE_AGENT_TOKEN": "agent-secret-1", "VANTAGE_API_TOKEN": "api-secret-2"}
    with network(tmp_path, extra_env=env) as n:
        n.start_coordinator("--tls-cert", str(cert_file), "--tls-key", str(key_file))
        n.start_agent("t-1", "de", "--ca", str(ca_file))
        # --tls verifies with the default roots; gRPC reads them from this variable.
        n.start_agent("t-3", "us", "--tls", env={"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca_file)})
        creds = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
        with grpc.secure_channel(n.address, creds) as channel:
            stub = pb_grpc.JobServiceStub(channel)
            for metadata, word in (((), "missing API token"), ((("authorization", "Bearer nope"),), "wrong API token")):
                with pytest.raises(grpc.RpcError) as info:
                    stub.ListAgents(pb.ListAgentsRequest(), metadata=metadata, timeout=5)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert word in (info.value.details() or "")
            good = (("authorization", "Bearer api-secret-2"),)
            wait_for(
                lambda: {"t-1", "t-3"} <= {a.agent_id for a in stub.ListAgents(pb.ListAgentsRequest(), metadata=good, timeout=5).agents if a.connected},
                20, "the TLS agents to connect with their token",
            )
            # The agent token is not an API token.
            with pytest.raises(grpc.RpcError) as info:
                stub.ListJobs(pb.ListJobsRequest(), metadata=(("authorization", "Bearer agent-secret-1"),), timeout=5)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "this is an agent token" in (info.value.details() or "")
        # The CLI verifies the coordinator with --ca and sends VANTAGE_API_TOKEN.
        out = n.cli("agents", "--ca", str(ca_file))
        assert out.returncode == 0 and "t-1" in out.stdout, out.stderr
        # Plaintext to a TLS listener fails cleanly.
        out = n.cli("agents")
        assert out.returncode == 2 and "UNAVAILABLE" in out.stderr
        # An agent with a wrong token is refused and says so in its log.
        bad = n.start_agent("t-2", "de", "--ca", str(ca_file))
        bad.env["VANTAGE_AGENT_TOKEN"] = "bad-token-7f3a"
        bad.stop()
        bad.start()
        wait_for(lambda: "coordinator_refused_agent" in bad.log(), 20, "the refusal in the agent's log")
        logs = bad.log() + (n.coordinator.log() if n.coordinator else "")
        for secret in ("bad-token-7f3a", "agent-secret-1", "api-secret-2"):
            assert secret not in logs, "a token leaked into a log line"


def test_non_loopback_listen_needs_tls_or_insecure(tmp_path: Path) -> None:
    out = subprocess.run(
        [*VANTAGE, "coordinator", "--listen", "0.0.0.0:0", "--metrics-listen", "127.0.0.1:0", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert out.returncode == 2
    assert "refusing to listen on a non-loopback address without TLS" in out.stderr


def test_sigterm_turns_health_not_serving_then_exits(tmp_path: Path, db_url: str | None) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with network(tmp_path, db_url=db_url) as n:
        proc = n.start_coordinator()
        with grpc.insecure_channel(n.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
            stream = health.Watch(health_pb2.HealthCheckRequest(), timeout=20)
            first = next(stream)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            proc.kill(15)
            statuses = []
            try:
                for update in stream:
                    statuses.append(update.status)
            except grpc.RpcError:
                pass
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        assert proc.popen is not None and proc.popen.wait(15) == 0
        assert "coordinator_draining" in proc.log() and "coordinator_stopped" in proc.log()
