"""Identity, roles, quotas and the audit, end to end: a real coordinator process (on
SQLite and on PostgreSQL), real agents, and the `vantage` CLI, over real gRPC.

- An agent is who and where it was enrolled: another agent's id is refused, whatever
  token comes with it; its own valid token with a different region claim gets the
  enrolled region; a live session is taken over only with its own credential; a revoked
  agent is cut off at once and stays out; all of it survives a restart.
- Each API role may do what it says and nothing more; quotas answer RESOURCE_EXHAUSTED
  naming the quota and when it frees up; every submit and cancel is in the audit.
- The edge: no request is parsed before its caller is known; health and reflection stay
  open.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from coordinator.client import VantageClient
from protos.vantage.v1 import vantage_pb2 as pb
from tests.e2e.harness import VANTAGE, Network, Proc, network, wait_for
from tests.e2e.hostile import RawAgent

pytestmark = pytest.mark.e2e

SHARED = "a-lab-shared-agent-token"
BOOT = "the-bootstrap-admin-token"


@pytest.fixture
def guarded(tmp_path: Path, db_url: str | None) -> Iterator[Network]:
    """A coordinator with the shared agent token and the bootstrap admin token set."""
    env = {"VANTAGE_AGENT_TOKEN": SHARED, "VANTAGE_API_TOKEN": BOOT}
    with network(tmp_path, db_url=db_url, extra_env=env) as n:
        n.start_coordinator()
        yield n


def cli(n: Network, *args: str, token: str | None = BOOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env["VANTAGE_COORDINATOR"] = n.address
    if token is not None:
        env["VANTAGE_API_TOKEN"] = token
    return subprocess.run([*VANTAGE, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def cli_json(n: Network, *args: str, token: str | None = BOOT) -> Any:
    proc = cli(n, *args, "--json", token=token)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def hello(
    n: Network, agent_id: str, region: str, token: str | None, *, creds: grpc.ChannelCredentials | None = None
) -> str:
    """Open a session as ``agent_id`` in ``region`` with ``token``: "welcome", or the
    status code the coordinator refused it with, and its message. The sync API: grpc's
    asyncio client may report a refusal that ends the stream while it writes as
    "INTERNAL: Internal error from Core" instead of the server's status (grpc/grpc#36066)."""
    with (grpc.secure_channel(n.address, creds) if creds else grpc.insecure_channel(n.address)) as channel:
        connect = channel.stream_stream("/vantage.v1.AgentService/Connect",
                                        request_serializer=pb.AgentMessage.SerializeToString,
                                        response_deserializer=pb.CoordinatorMessage.FromString)  # fmt: skip
        first = pb.AgentMessage(hello=pb.Hello(agent_id=agent_id, region=region, kinds=["tcp"], version="0.1.0",
                                                      result_format=pb.RESULT_FORMAT_TYPED))
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        call = connect(iter([first]), metadata=metadata, timeout=10)
        try:
            reply = next(call)
            return "welcome" if reply.HasField("welcome") else str(reply)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        finally:
            call.cancel()


def agents(n: Network, token: str = BOOT) -> dict[str, pb.AgentInfo]:
    with VantageClient(n.address, token=token) as c:
        return {a.agent_id: a for a in c.agents()}


def test_an_agent_is_who_and_where_it_was_enrolled(guarded: Network) -> None:
    n = guarded
    enrolled = cli_json(n, "agents", "add", "ru-1", "--region", "ru-msk", "--country", "RU", "--asn", "12389",
                        "--label", "provider=rostelecom")  # fmt: skip
    token = enrolled["token"]
    assert token.startswith("vantage-agent-") and enrolled["enrollment"]["region"] == "ru-msk"
    # Only the hash is kept: the token is nowhere in the database.
    stored = n.query("SELECT * FROM enrollments") + n.query("SELECT * FROM audit")
    assert stored and token not in repr(stored)
    assert n.query("SELECT token_hash FROM enrollments") == [(hashlib.sha256(token.encode()).hexdigest(),)]

    # A real agent with its token, claiming another region, country and ASN: ignored.
    n.start_agent("ru-1", "de-fra", "--country", "DE", "--asn", "3320", env={"VANTAGE_AGENT_TOKEN": token})
    n.wait_agents({"ru-1"})
    me = agents(n)["ru-1"]
    assert (me.region, me.country, me.asn, dict(me.labels)) == ("ru-msk", "RU", 12389, {"provider": "rostelecom"})
    assert n.coordinator is not None and "agent_claims_ignored" in n.coordinator.log()

    # An attacker with another agent's id: the shared token, no token, a wrong token.
    assert hello(n, "ru-1", "ru-msk", SHARED).startswith("PERMISSION_DENIED: hello.agent_id: agent ru-1 is enrolled")
    assert hello(n, "ru-1", "ru-msk", None).startswith("UNAUTHENTICATED: missing agent token")
    assert hello(n, "ru-1", "ru-msk", "vantage-agent-guess").startswith("UNAUTHENTICATED")
    # ... and with its own valid token: its own id only, and where it was enrolled.
    evil = cli_json(n, "agents", "add", "evil-1", "--region", "de-fra")["token"]
    refused = hello(n, "ru-1", "ru-msk", evil)
    assert refused == "PERMISSION_DENIED: hello.agent_id: this token is enrolled for agent evil-1, not ru-1"
    assert hello(n, "evil-1", "ru-msk", evil) == "welcome"
    seen = agents(n)
    assert seen["evil-1"].region == "de-fra"
    assert [a for a, i in seen.items() if i.region == "ru-msk"] == ["ru-1"]  # a region's quorum stays its own
    assert seen["ru-1"].connected  # the real agent was never displaced

    # A live session: the same credential replaces it (a network change); another is refused.
    async def replace_with_same_token() -> bool:
        # entered in order: the second session opens while the first is live
        async with RawAgent(n.address, "evil-1", "x", token=evil) as first, RawAgent(n.address, "evil-1", "x", token=evil):
            with pytest.raises((AssertionError, grpc.aio.AioRpcError)):  # the first one's stream ends
                for _ in range(10):
                    await first.read(5)
            return await asyncio.to_thread(lambda: agents(n)["evil-1"].connected)  # the second one is served

    assert asyncio.run(replace_with_same_token())

    async def another_credential() -> tuple[str, str]:
        async with RawAgent(n.address, "lab-1", "lab", token=SHARED) as lab:
            # ... a second shared-token agent is the same credential; an enrolled token is not:
            took = await asyncio.to_thread(hello, n, "lab-1", "lab", "vantage-agent-not-enrolled")
            assert took.startswith("UNAUTHENTICATED")
            # Enrolling lab-1 ends the session under its id that the shared token opened ...
            lab_token = await asyncio.to_thread(
                lambda: cli_json(n, "agents", "add", "lab-1", "--region", "lab-ber")["token"]
            )
            with pytest.raises((AssertionError, grpc.aio.AioRpcError)):
                for _ in range(10):
                    await lab.read(5)
            # ... and the id is the enrolled agent's from now on, where it was enrolled.
            async with RawAgent(n.address, "lab-1", "lab", token=lab_token) as enrolled:
                await enrolled.heartbeat()
                region = await asyncio.to_thread(lambda: agents(n)["lab-1"].region)
                shared = await asyncio.to_thread(hello, n, "lab-1", "lab", SHARED)
                return region, shared

    region, shared = asyncio.run(another_credential())
    assert region == "lab-ber"
    assert shared.startswith("PERMISSION_DENIED: hello.agent_id: agent lab-1 is enrolled")

    # Revocation cuts the agent off at once, and its token stays refused.
    revoked = cli_json(n, "agents", "revoke", "ru-1")
    assert revoked["revoked_at"] > 0
    wait_for(lambda: not agents(n)["ru-1"].connected, 5, "the revoked agent's session to end")
    assert hello(n, "ru-1", "ru-msk", token).startswith("UNAUTHENTICATED")
    # the real agent keeps trying, and keeps being refused: a refusal it logged after its
    # session ended proves it came back since; only then does "not connected" say anything
    retried_and_refused(n.root / "ru-1.log")
    assert not agents(n)["ru-1"].connected

    # All of it survives a restart of the coordinator.
    n.coordinator.stop()
    n.start_coordinator()
    rows = {e["agent_id"]: e for e in cli_json(n, "agents", "enrolled")}
    assert set(rows) == {"ru-1", "evil-1", "lab-1"}
    assert rows["ru-1"]["revoked_at"] > 0 and rows["evil-1"]["revoked_at"] == 0
    assert hello(n, "ru-1", "ru-msk", token).startswith("UNAUTHENTICATED")
    assert hello(n, "evil-1", "anywhere", evil) == "welcome"
    # a revoked id is not up for grabs with the shared token either
    assert hello(n, "ru-1", "ru-msk", SHARED).startswith("PERMISSION_DENIED: hello.agent_id: agent ru-1 was enrolled and revoked")


def _job_done(n: Network, job_id: str) -> bool:
    with VantageClient(n.address, token=BOOT) as c:
        return c.get(job_id).state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


def refused(proc: subprocess.CompletedProcess[str], code: str, *words: str) -> None:
    """The CLI's one-line error: the status and the words that say why."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{code}:" in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_each_role_may_what_it_says_quotas_say_when_and_the_audit_names_who(guarded: Network) -> None:
    n = guarded
    n.start_agent("h-1", "de")  # the shared agent token, from the network's environment
    n.wait_agents({"h-1"})
    target = f"127.0.0.1:{n.port}"  # the coordinator's own port: a tcp connect that works
    reader = cli_json(n, "tokens", "add", "grafana", "--role", "read")["secret"]
    news = cli_json(n, "tokens", "add", "newsroom", "--role", "submit", "--max-active-jobs", "1",
                    "--max-tasks-per-hour", "3")["secret"]  # fmt: skip
    ops = cli_json(n, "tokens", "add", "ops", "--role", "admin")["secret"]
    assert reader.startswith("vantage-api-") and len({reader, news, ops}) == 3
    stored = n.query("SELECT * FROM api_tokens")
    assert len(stored) == 3 and not any(s in repr(stored) for s in (reader, news, ops))

    # read: reads, and nothing else
    assert cli(n, "jobs", token=reader).returncode == 0
    assert cli(n, "verdicts", token=reader).returncode == 0
    refused(cli(n, "submit", "tcp", target, token=reader), "PERMISSION_DENIED", "grafana", "needs 'submit'")
    refused(cli(n, "tokens", "list", token=reader), "PERMISSION_DENIED", "needs 'admin'")
    refused(cli(n, "audit", token=reader), "PERMISSION_DENIED")

    # submit: its own jobs, within its quotas
    refused(cli(n, "submit", "tcp", target, "--every", "5s", "--count", "100", token=news),
            "RESOURCE_EXHAUSTED", "max_tasks_per_hour", "this job alone creates 100 tasks an hour")  # fmt: skip
    j1 = cli_json(n, "submit", "tcp", target, token=news)["job_id"]
    wait_for(lambda: _job_done(n, j1), 20, "the first job to end")
    j2 = cli_json(n, "submit", "tcp", target, "--every", "60s", "--count", "2", token=news)["job_id"]
    refused(cli(n, "submit", "tcp", target, token=news), "RESOURCE_EXHAUSTED", "max_active_jobs",
            "newsroom", "has 1 running jobs", "vantage cancel")  # fmt: skip
    refused(cli(n, "tokens", "add", "mine", "--role", "admin", token=news), "PERMISSION_DENIED")
    refused(cli(n, "cancel", j2, token=reader), "PERMISSION_DENIED")
    j4 = cli_json(n, "submit", "tcp", target, "--every", "60s", "--count", "3", token=ops)["job_id"]
    refused(cli(n, "cancel", j4, token=news), "PERMISSION_DENIED", "submitted by another token")
    assert cli_json(n, "cancel", j2, token=news)["state"] == "cancelled"
    # 1 + 2 tasks this hour already: one more is over the quota, and it says until when
    refused(cli(n, "submit", "tcp", target, token=news), "RESOURCE_EXHAUSTED", "max_tasks_per_hour",
            "3 of its 3 tasks an hour in use", "enough frees up at", "(in 60 min)")  # fmt: skip

    # admin: any job, and the tokens
    assert cli_json(n, "cancel", j4, token=ops)["state"] == "cancelled"
    assert cli(n, "tokens", "revoke", "newsroom", token=ops).returncode == 0
    refused(cli(n, "jobs", token=news), "UNAUTHENTICATED", "wrong API token")
    # its name is never given to another token: its jobs and audit stay its own
    refused(cli(n, "tokens", "add", "newsroom", "--role", "admin", token=ops), "ALREADY_EXISTS", "not reused")

    # The audit: every submit and cancel, with the token's name.
    lines = cli(n, "audit", "--since", "1h", "--json", token=ops)
    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    acts = [(r["actor"], r["action"], r["subject"]) for r in records if r["action"] in ("submit", "cancel")]
    assert acts == [
        ("newsroom", "submit", j1), ("newsroom", "submit", j2), ("ops", "submit", j4),
        ("newsroom", "cancel", j2), ("ops", "cancel", j4),
    ]  # fmt: skip
    assert records[0]["action"] == "add_token" and records[0]["actor"] == "bootstrap"
    assert ("ops", "revoke_token", "newsroom") in [(r["actor"], r["action"], r["subject"]) for r in records]
    assert next(r for r in records if r["subject"] == j2)["detail"]["hourly_cost"] == 2
    table = cli(n, "audit", token=ops)
    assert table.returncode == 0 and table.stdout.count("newsroom") >= 4

    # After a restart the tokens, owners and audit are all still there.
    assert n.coordinator is not None
    n.coordinator.stop()
    n.start_coordinator()
    refused(cli(n, "cancel", j1, token=reader), "PERMISSION_DENIED")
    assert cli(n, "jobs", token=reader).returncode == 0
    refused(cli(n, "jobs", token=news), "UNAUTHENTICATED")
    assert len(cli(n, "audit", "--json", token=ops).stdout.splitlines()) == len(records)


def test_nothing_is_parsed_before_the_caller_is_known(guarded: Network) -> None:
    n = guarded
    garbage = b"\xff" * 4096  # no protobuf message parses from this
    with grpc.insecure_channel(n.address) as channel:
        raw = channel.unary_unary("/vantage.v1.JobService/SubmitJob")
        for metadata in ((), (("authorization", "Bearer guess"),)):
            with pytest.raises(grpc.RpcError) as caught:
                raw(garbage, metadata=metadata, timeout=5)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED  # refused before parsing
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff" * (4 << 20), timeout=10)  # 4 MiB from nobody: refused the same way
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as caught:
            raw(garbage, metadata=(("authorization", f"Bearer {BOOT}"),), timeout=5)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # parsed once the caller is known
        assert "does not parse" in (caught.value.details() or "")
        # The agents' stream is refused before a hello is read (not after the 10 s hello wait).
        stream = channel.stream_stream("/vantage.v1.AgentService/Connect")
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            list(stream(iter(()), timeout=8))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED and time.monotonic() - began < 5
        # Health and reflection stay open to anyone.
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for a in answers for s in a.list_services_response.service}
        assert {"vantage.v1.AgentService", "vantage.v1.JobService", "vantage.v1.AdminService"} <= names
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary("/vantage.v1.JobService/NoSuchCall")(b"", timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.timeout(180)
def test_a_fleet_shares_its_credentials_and_the_holder_cuts_a_revoked_agent_off(
    tmp_path: Path, pg_server: Any
) -> None:
    """Two coordinators on one PostgreSQL database: a token and an enrolment made through
    the relay are written by the holder and honoured at both; an agent enrolled in ru-msk
    connected through the relay is there, not where it claims; revoking it at the relay
    ends its session at the holder, at once."""
    from tests.e2e.test_fleet import Member

    env = {"VANTAGE_AGENT_TOKEN": SHARED, "VANTAGE_API_TOKEN": BOOT}
    with network(tmp_path, db_url=pg_server.create_db(), extra_env=env) as n:
        a = Member(n, 0).start()
        wait_for(a.leads, 20, "the first coordinator to lead")
        b = Member(n, 1).start()
        wait_for(b.follows, 20, "the second coordinator to relay")

        def admin(member: Member, *args: str, token: str = BOOT) -> Any:
            proc = subprocess.run(
                [*VANTAGE, *args, "--coordinator", member.address, "--json"], capture_output=True, text=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")} | {"VANTAGE_API_TOKEN": token},
                timeout=60, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)

        ops = admin(b, "tokens", "add", "ops", "--role", "admin")["secret"]
        agent_token = admin(b, "agents", "add", "ru-1", "--region", "ru-msk", token=ops)["token"]  # the new token, at once
        assert [t["name"] for t in admin(a, "tokens", "list", token=ops)] == ["ops"]
        n.root.joinpath("ru-1").mkdir()
        agent = Proc("ru-1", [
            *VANTAGE, "agent", "--coordinator", b.address, "--region", "de-fra", "--id", "ru-1",
            "--state-dir", str(n.root / "ru-1"),
        ], n.root / "ru-1.log", n.env() | {"VANTAGE_AGENT_TOKEN": agent_token}).start()  # fmt: skip
        n.procs.append(agent)

        def ru_1(member: Member) -> pb.AgentInfo | None:
            with member.client(ops) as c:
                return next((x for x in c.agents() if x.agent_id == "ru-1" and x.connected), None)

        seen = wait_for(lambda: ru_1(a), 30, "the enrolled agent to connect through the relay")
        assert seen.region == "ru-msk" and "via" in seen.peer
        assert hello(n_at(n, b), "ru-1", "ru-msk", SHARED).startswith("PERMISSION_DENIED")  # at the relay too
        admin(b, "agents", "revoke", "ru-1", token=ops)
        wait_for(lambda: ru_1(a) is None, 5, "the revoked agent's session to end at the holder")
        retried_and_refused(n.root / "ru-1.log")  # it came back (to the relay) since, and was refused
        assert ru_1(a) is None  # and it stays out, through either coordinator
        audit = [json.loads(line) for line in subprocess.run(
            [*VANTAGE, "audit", "--coordinator", b.address, "--json"], capture_output=True, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")} | {"VANTAGE_API_TOKEN": ops},
            timeout=60, check=True,
        ).stdout.splitlines()]  # fmt: skip
        assert [(r["actor"], r["action"]) for r in audit] == [
            ("bootstrap", "add_token"), ("ops", "enroll_agent"), ("ops", "revoke_agent"),
        ]


def retried_and_refused(agent_log: Path, within_s: float = 60.0) -> None:
    """Wait (bounded) until the agent writing ``agent_log`` logs a refusal more than it had
    when called: it tried to connect again after that point, and was turned away."""
    def refusals() -> int:
        return agent_log.read_text().count("coordinator_refused_agent")

    before = refusals()
    wait_for(lambda: refusals() > before, within_s, "the agent to try again and be refused")


def n_at(n: Network, member: Any) -> Network:
    """``n`` as seen at a fleet member's address (for ``hello``)."""
    import dataclasses

    return dataclasses.replace(n, port=member.port, procs=[])


def test_with_mutual_tls_an_agent_is_the_id_its_certificate_names(tmp_path: Path) -> None:
    """--client-ca: every connection needs a certificate the CA signed. An agent may come
    with its certificate alone: it is the id the certificate names (where an enrolment
    says, when it has one; revocable then); another id is refused."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files: dict[str, Path] = {}

    def issue(name: str) -> tuple[Path, Path]:
        cert = ca.issue_cert(f"{name}.agents.test", common_name=name)
        files[name] = tmp_path / f"{name}.pem"
        cert.cert_chain_pems[0].write_to_path(str(files[name]))
        cert.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
        return files[name], tmp_path / f"{name}.key"

    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca_file = str(tmp_path / "ca.pem")
    m1, m2, ops = issue("m-1"), issue("m-2"), issue("ops-laptop")
    with network(tmp_path / "net", extra_env={"VANTAGE_API_TOKEN": BOOT}) as n:
        n.start_coordinator("--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key"),
                            "--client-ca", ca_file)  # fmt: skip
        tls = ("--ca", ca_file, "--cert", str(ops[0]), "--key", str(ops[1]))
        enrolled = cli_json(n, "agents", "add", "m-1", "--region", "ru-msk", *tls)
        assert enrolled["enrollment"]["agent_id"] == "m-1"
        # Without a client certificate nothing gets through, not even a good token.
        refused(cli(n, "agents", "--ca", ca_file), "UNAVAILABLE")
        n.start_agent("m-1", "de-fra", "--ca", ca_file, "--cert", str(m1[0]), "--key", str(m1[1]))
        n.start_agent("m-2", "us", "--ca", ca_file, "--cert", str(m2[0]), "--key", str(m2[1]))

        def seen() -> dict[str, Any]:
            return {a["agent_id"]: a for a in cli_json(n, "agents", *tls) if a["connected"]}

        both = wait_for(lambda: (s := seen()).keys() >= {"m-1", "m-2"} and s, 30, "the certified agents")
        assert both["m-1"]["region"] == "ru-msk"  # enrolled: where its enrolment says
        assert both["m-2"]["region"] == "us"  # not enrolled: the CA vouches for its id only

        def claim(agent_id: str, pair: tuple[Path, Path]) -> str:
            creds = grpc.ssl_channel_credentials(Path(ca_file).read_bytes(), pair[1].read_bytes(), pair[0].read_bytes())
            return hello(n, agent_id, "ru-msk", None, creds=creds)

        took = claim("m-1", m2)
        assert took == "PERMISSION_DENIED: hello.agent_id: the client certificate names agent m-2, not m-1"
        assert cli_json(n, "agents", "revoke", "m-1", *tls)["revoked_at"] > 0
        wait_for(lambda: "m-1" not in seen(), 5, "the revoked certified agent's session to end")
        assert claim("m-1", m1) == "UNAUTHENTICATED: agent m-1 was revoked"
        assert "m-2" in seen()


def test_mutual_tls_is_refused_in_a_fleet_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "x.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    proc = subprocess.run(
        [*VANTAGE, "coordinator", "--db", "postgresql://vantage@127.0.0.1:1/none", "--listen", "127.0.0.1:0",
         "--metrics-listen", "127.0.0.1:0", "--tls-cert", str(tmp_path / "x.pem"), "--tls-key",
         str(tmp_path / "x.pem"), "--client-ca", str(tmp_path / "x.pem")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--client-ca: not in a fleet yet" in proc.stderr and "Traceback" not in proc.stderr


def test_a_byte_quota_stops_an_upload_job_that_the_task_quota_lets_through(guarded: Network) -> None:
    """The finding: a token allowed 4 tasks an hour made one agent upload 419 MB in 31 s.
    With --max-bytes-per-hour the second 100 MB upload is refused at submit, on both
    engines, and the quota is stored (a restart keeps it)."""
    n = guarded
    n.start_agent("u-1", "de")
    n.wait_agents({"u-1"})
    up = cli_json(n, "tokens", "add", "uploader", "--role", "submit", "--max-tasks-per-hour", "4",
                  "--max-bytes-per-hour", "150M")  # fmt: skip
    assert int(up["token"]["max_bytes_per_hour"]) == 150 * 1024 * 1024  # uint64: a string in JSON
    sink = "http://127.0.0.1:1/sink"  # nothing listens: the job ends at once
    args = ("submit", "throughput", sink, "-o", "direction=upload", "-o", "max_bytes=100M")
    first = cli_json(n, *args, token=up["secret"])["job_id"]
    refused(cli(n, *args, token=up["secret"]), "RESOURCE_EXHAUSTED", "max_bytes_per_hour",
            "uploader", f"{100 * 1024 * 1024} of its {150 * 1024 * 1024} bytes an hour in use")  # fmt: skip
    # a job that alone is over the quota says so
    refused(cli(n, "submit", "throughput", sink, "-o", "max_bytes=80M", "-o", "control=http://127.0.0.1:1/c",
                token=up["secret"]), "RESOURCE_EXHAUSTED", "this job alone may move", "(1 tasks of at most")  # fmt: skip
    # the task quota alone would have let both through: 2 of 4 tasks
    assert cli_json(n, "job", first, token=up["secret"])["job_id"] == first
    stored = n.query("SELECT max_bytes_per_hour FROM api_tokens WHERE name = ?", ("uploader",))
    assert stored == [(150 * 1024 * 1024,)]
