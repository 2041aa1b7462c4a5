"""Who may call what (coordinator/access.py) and the quotas (coordinator/quotas.py), on
their own: every role against every kind of token, the identity an enrolled agent gets,
and the quota messages. The end-to-end tests run the same rules through real processes
(tests/e2e/test_trust_identity.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from coordinator import quotas
from coordinator.access import (
    AGENT,
    METHOD_ROLES,
    Access,
    Denied,
    Principal,
    bind_agent,
    digest,
    new_token,
)
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import AgentInfo, ApiToken, Enrollment, Job, JobSpec, JobState
from coordinator.store import SQLiteStore
from protos.vantage.v1 import vantage_pb2 as pb

LOCAL = "ipv4:127.0.0.1:4000"
REMOTE = "ipv4:198.51.100.7:4000"


def test_every_method_of_the_vantage_services_needs_a_role() -> None:
    """The interceptor refuses a method missing from the table; the table must hold every
    method of the proto, and nothing else."""
    methods = {
        f"/{s.full_name}/{m.name}" for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods
    }
    assert set(METHOD_ROLES) == methods
    assert METHOD_ROLES["/vantage.v1.AgentService/Connect"] == AGENT
    assert {METHOD_ROLES[m] for m in methods if ".AdminService/" in m} == {"admin"}


def _access(agent: str | None = "shared-agent", api: str | None = "boot") -> tuple[Access, dict[str, str]]:
    a = Access(agent, api)
    secrets = {name: new_token("vantage-api-") for name in ("r", "s", "a", "old")}
    secrets["agent"] = new_token("vantage-agent-")
    a.load(
        [Enrollment(agent_id="ru-1", token_hash=digest(secrets["agent"]), region="ru-msk", country="RU", asn=12389)],
        [
            ApiToken(name="r", token_hash=digest(secrets["r"]), role="read"),
            ApiToken(name="s", token_hash=digest(secrets["s"]), role="submit", max_active_jobs=1),
            ApiToken(name="a", token_hash=digest(secrets["a"]), role="admin"),
            ApiToken(name="old", token_hash=digest(secrets["old"]), role="admin", revoked_at=5.0),
        ],
    )
    return a, secrets


async def _denied(access: Access, role: str, token: str | None, peer: str = LOCAL) -> Denied:
    with pytest.raises(Denied) as caught:
        await access.authenticate(role, token, peer)
    return caught.value


async def test_each_role_gets_what_it_may_and_nothing_more() -> None:
    access, t = _access()
    for role in ("read", "submit", "admin"):
        assert (await access.authenticate(role, t["a"], REMOTE)).name == "a"
        assert (await access.authenticate(role, "boot", REMOTE)).name == "bootstrap"
    assert (await access.authenticate("read", t["r"], REMOTE)).role == "read"
    assert (await access.authenticate("submit", t["s"], REMOTE)).token is not None
    for token, role in ((t["r"], "submit"), (t["r"], "admin"), (t["s"], "admin")):
        why = await _denied(access, role, token)
        assert why.code is grpc.StatusCode.PERMISSION_DENIED and f"needs {role!r}" in why.message


async def test_wrong_revoked_missing_and_misplaced_tokens_are_refused() -> None:
    access, t = _access()
    assert (await _denied(access, "read", "nope")).code is grpc.StatusCode.UNAUTHENTICATED
    assert (await _denied(access, "read", t["old"])).code is grpc.StatusCode.UNAUTHENTICATED  # revoked
    assert (await _denied(access, "read", None)).message == "missing API token"
    assert (await _denied(access, AGENT, None)).message == "missing agent token"
    assert (await _denied(access, "read", "x" * 10_000)).code is grpc.StatusCode.UNAUTHENTICATED
    # an agent's token on the API and an API token on the agents' stream: wrong kind
    for role, token in (("read", t["agent"]), ("read", "shared-agent"), (AGENT, t["a"]), (AGENT, "boot")):
        why = await _denied(access, role, token)
        assert why.code is grpc.StatusCode.PERMISSION_DENIED and "token" in why.message


async def test_without_configured_tokens_only_loopback_is_served_without_one() -> None:
    access, t = _access(agent=None, api=None)
    assert (await access.authenticate("admin", None, LOCAL)).name == "loopback"
    assert (await access.authenticate(AGENT, None, "ipv6:%5B::1%5D:5000")).credential == "loopback"
    why = await _denied(access, "read", None, REMOTE)
    assert why.code is grpc.StatusCode.UNAUTHENTICATED and "loopback" in why.message
    # a token that is given must be right, loopback or not
    assert (await _denied(access, "read", "wrong", LOCAL)).code is grpc.StatusCode.UNAUTHENTICATED
    assert (await access.authenticate(AGENT, t["agent"], REMOTE)).credential.startswith("enrolled:ru-1:")


async def test_a_fleet_member_reads_the_credentials_again_for_a_token_it_does_not_know() -> None:
    made = new_token("vantage-api-")
    reads = []

    async def reload() -> tuple[list[Enrollment], list[ApiToken]]:
        reads.append(1)
        return [], [ApiToken(name="new", token_hash=digest(made), role="read")]

    now = [100.0]
    access = Access(None, "boot", reload=reload, clock=lambda: now[0])
    assert (await access.authenticate("read", made, REMOTE)).name == "new"
    assert len(reads) == 1
    # unknown tokens do not make it read the database more than once per REFRESH_ON_MISS_S
    for _ in range(5):
        await _denied(access, "read", "guess")
    assert len(reads) == 1
    now[0] += 1.5
    await _denied(access, "read", "guess")
    assert len(reads) == 2


def _agent(agent_id: str = "ru-1", region: str = "de-fra", **kw: object) -> AgentInfo:
    return AgentInfo(agent_id=agent_id, region=region, **kw)  # type: ignore[arg-type]


async def test_an_enrolled_agent_is_where_it_was_enrolled_whatever_its_hello_says() -> None:
    access, t = _access()
    me = await access.authenticate(AGENT, t["agent"], REMOTE)
    bound = bind_agent(me, _agent(country="DE", asn=3320, labels={"evil": "1"}, version="1.0"), access)
    assert (bound.region, bound.country, bound.asn, dict(bound.labels)) == ("ru-msk", "RU", 12389, {})
    assert bound.version == "1.0"  # what it runs is its own to say
    with pytest.raises(Denied, match="enrolled for agent ru-1, not de-1"):
        bind_agent(me, _agent("de-1"), access)


async def test_an_enrolled_id_cannot_be_taken_with_the_shared_token_or_on_loopback() -> None:
    access, _ = _access()
    shared = await access.authenticate(AGENT, "shared-agent", REMOTE)
    with pytest.raises(Denied, match="ru-1 is enrolled") as caught:
        bind_agent(shared, _agent("ru-1"), access)
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert bind_agent(shared, _agent("lab-1", "anywhere"), access).region == "anywhere"
    loopback = Principal(name="loopback", role=AGENT, credential="loopback")
    with pytest.raises(Denied):
        bind_agent(loopback, _agent("ru-1"), access)


def _job(n: int, owner: str, cost: int, *, created: float, finished: bool = False) -> Job:
    return Job(
        job_id=f"{n:016x}", spec=JobSpec(kind="tcp", targets=("a:1",)), owner=owner, hourly_cost=cost,
        state=JobState.DONE if finished else JobState.RUNNING, created_at=created, next_round_at=created,
    )  # fmt: skip


def test_a_periodic_job_costs_its_tasks_per_hour_a_one_off_job_its_tasks() -> None:
    assert quotas.hourly_cost(JobSpec(kind="tcp", targets=("a:1",)), 6) == 6
    assert quotas.hourly_cost(JobSpec(kind="tcp", targets=("a:1",), every_s=60, count=1000), 6) == 360
    assert quotas.hourly_cost(JobSpec(kind="tcp", targets=("a:1",), every_s=60, count=5), 6) == 30
    assert quotas.hourly_cost(JobSpec(kind="tcp", targets=("a:1",), every_s=7, until=1e12), 1) == 515


def test_quotas_name_the_quota_and_when_it_frees_up() -> None:
    now = 1_000_000.0
    token = ApiToken(name="news", token_hash="", role="submit", max_active_jobs=2, max_tasks_per_hour=100)
    other = [_job(9, "someone-else", 10_000, created=now)]
    quotas.check(token, other, 100, now)  # others' jobs never count
    running = [_job(1, "news", 10, created=now - 10), _job(2, "news", 10, created=now - 5)]
    with pytest.raises(quotas.QuotaExceeded, match=r"max_active_jobs: token 'news' has 2 running jobs"):
        quotas.check(token, running, 1, now)
    with pytest.raises(quotas.QuotaExceeded, match="this job alone creates 101 tasks an hour"):
        quotas.check(token, [], 101, now)
    done = [_job(3, "news", 40, created=now - 3000, finished=True), _job(4, "news", 40, created=now - 600, finished=True)]
    quotas.check(token, done, 20, now)  # 80 + 20 fits
    with pytest.raises(quotas.QuotaExceeded) as caught:
        quotas.check(token, done, 30, now)  # 80 + 30: the older one ages out in 10 minutes
    assert "80 of its 100 tasks an hour in use and this job needs 30" in str(caught.value)
    assert "(in 10 min)" in str(caught.value)
    old = [_job(5, "news", 100, created=now - 3601, finished=True)]
    quotas.check(token, old, 100, now)  # out of the hour
    busy = [_job(6, "news", 90, created=now - 7200)]  # a periodic job still running: counts on
    with pytest.raises(quotas.QuotaExceeded, match="when its running jobs end or are cancelled"):
        quotas.check(token, busy, 20, now)


async def test_a_client_certificate_names_the_only_id_its_agent_may_be() -> None:
    access, t = _access()
    me = await access.authenticate(AGENT, None, REMOTE, cert="m-1")  # not enrolled: its hello says where
    assert me.credential == "cert:m-1" and bind_agent(me, _agent("m-1", "us"), access).region == "us"
    with pytest.raises(Denied, match="certificate names agent m-1, not ru-1"):
        bind_agent(me, _agent("ru-1"), access)
    enrolled = await access.authenticate(AGENT, None, REMOTE, cert="ru-1")  # enrolled: where it was enrolled
    assert bind_agent(enrolled, _agent("ru-1", "us"), access).region == "ru-msk"
    with pytest.raises(Denied, match="this token is enrolled for agent ru-1") as caught:
        await access.authenticate(AGENT, t["agent"], REMOTE, cert="m-1")  # a token for another id
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    shared = await access.authenticate(AGENT, "shared-agent", REMOTE, cert="m-1")
    with pytest.raises(Denied, match="certificate names agent m-1"):
        bind_agent(shared, _agent("lab-9"), access)
    with pytest.raises(Denied, match="not an agent id"):
        await access.authenticate(AGENT, None, REMOTE, cert="bad name!")
    access.put_enrollment(Enrollment(agent_id="m-1", token_hash="x", region="r", revoked_at=1.0))
    with pytest.raises(Denied, match="m-1 was revoked"):
        await access.authenticate(AGENT, None, REMOTE, cert="m-1")


def test_a_finished_periodic_job_counts_for_the_hour_after_it_ended() -> None:
    now = 1_000_000.0
    token = ApiToken(name="news", token_hash="", role="submit", max_tasks_per_hour=100)
    ran_two_hours = _job(7, "news", 60, created=now - 7200, finished=True)
    ran_two_hours.finished_at = now - 600  # cancelled ten minutes ago: its last hour had 60 tasks
    with pytest.raises(quotas.QuotaExceeded, match=r"frees up at .*\(in 50 min\)"):
        quotas.check(token, [ran_two_hours], 50, now)
    quotas.check(token, [ran_two_hours], 40, now)


async def test_concurrent_submits_cannot_race_past_a_quota(tmp_path: Path) -> None:
    """Every submit awaits its write; the jobs still being written count against the quota."""
    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig())
        core.agent_connected(AgentInfo(agent_id="a-1", region="de", kinds=("tcp",)), LOCAL, [])
        token = ApiToken(name="news", token_hash="", role="submit", max_active_jobs=1)
        spec = JobSpec(kind="tcp", targets=("127.0.0.1:1",), every_s=60, count=3)
        outcomes = await asyncio.gather(
            *(core.submit_job(spec, owner="news", token=token) for _ in range(8)), return_exceptions=True
        )
        accepted = [o for o in outcomes if isinstance(o, Job)]
        assert len(accepted) == 1, outcomes
        assert all(isinstance(o, quotas.QuotaExceeded) for o in outcomes if o not in accepted)
        assert not core._writing  # every reservation released
    finally:
        await store.close()


async def test_a_revocation_between_a_streams_opening_and_its_hello_holds() -> None:
    access, t = _access()
    opened = await access.authenticate(AGENT, t["agent"], REMOTE)  # the stream passed the check ...
    e = access.enrollments["ru-1"]
    access.put_enrollment(Enrollment(**{**e.__dict__, "revoked_at": 9.0}))  # ... then it was revoked
    with pytest.raises(Denied, match="this credential was revoked") as caught:
        bind_agent(opened, _agent("ru-1"), access)
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    # enrolled again with a new token: the old one's stream is still not the agent
    access.put_enrollment(Enrollment(**{**e.__dict__, "token_hash": digest("new")}))
    with pytest.raises(Denied, match="this credential was revoked"):
        bind_agent(opened, _agent("ru-1"), access)


async def test_a_fleet_read_that_began_before_a_revocation_does_not_undo_it() -> None:
    secret = new_token("vantage-api-")
    before = ApiToken(name="news", token_hash=digest(secret), role="read")

    async def stale() -> tuple[list[Enrollment], list[ApiToken]]:
        return [], [before]  # read before the revocation committed

    access = Access(None, "boot", reload=stale)
    access.load([], [before])
    access.put_token(ApiToken(**{**before.__dict__, "revoked_at": 5.0}))
    await access.refresh()
    assert access.tokens["news"].revoked_at == 5.0
    assert (await _denied(access, "read", secret)).code is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(("listen", "warned"), [("0.0.0.0:0", True), ("127.0.0.1:0", False)])
async def test_the_shared_agent_token_off_loopback_is_said_at_start_up(
    tmp_path: Path, listen: str, warned: bool
) -> None:
    """Binds a port on every address for a moment (nothing connects to it)."""
    from structlog.testing import capture_logs

    from coordinator.server import CoordinatorServer, ServerConfig

    server = CoordinatorServer(ServerConfig(listen=listen, metrics_listen="127.0.0.1:0", insecure=True,
                                            agent_token="shared", db=str(tmp_path / "v.db")))  # fmt: skip
    with capture_logs() as logs:
        await server.start()
    try:
        said = [e for e in logs if e["event"] == "shared_agent_token_off_loopback"]
        assert bool(said) is warned
        if warned:
            assert "vantage agents add" in said[0]["advice"]
    finally:
        server.shutdown()
        await server._drain([])


async def test_a_live_session_is_taken_over_only_with_its_own_credential(tmp_path: Path) -> None:
    from coordinator.core import AgentRefused

    store = SQLiteStore(tmp_path / "v.db")
    try:
        core = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig())
        info = AgentInfo(agent_id="m-1", region="de", kinds=("tcp",))
        first = core.agent_connected(info, LOCAL, [], "cert:m-1")
        with pytest.raises(AgentRefused, match="connected with another credential"):
            core.agent_connected(info, LOCAL, [], "enrolled:m-1:0123456789abcdef")
        assert core.registry.session("m-1") is first and not first.closed.is_set()
        again = core.agent_connected(info, LOCAL, [], "cert:m-1")  # the same one: it came back
        assert first.closed.is_set() and core.registry.session("m-1") is again
        again.close()  # a session that ended frees the id for any credential that may have it
        assert core.agent_connected(info, LOCAL, [], "enrolled:m-1:0123456789abcdef") is not again
    finally:
        await store.close()
