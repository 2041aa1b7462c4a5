"""Untrusted input, end to end, against a real coordinator process over real gRPC: what a
seized agent sends, what a hostile probed server answers, what an API caller submits.

Each finding of the trust review has its test here (the ca_file rule is in test_network.py,
where the agents run the jobs): a forged job, agent and target; far-future and non-finite
times; NaN in a result's data; an unknown failure class as a metric label; an over-long
batch; the uint32 task-count overflow; a 1 MB option; an IDNA-invalid host; escape
sequences in a reason phrase; repeated 100 Continue; plaintext to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc
from tests.e2e.harness import VANTAGE, Network, network, wait_for
from tests.e2e.hostile import RawAgent, answer

pytestmark = pytest.mark.e2e

ESCAPE = "\x1b]0;pwned\x07\x1b[2J"


class EvilServer:
    """A raw TCP server on 127.0.0.1 that answers every HTTP request with ``reply``."""

    def __init__(self, reply: bytes, *, then_wait: bool = False) -> None:
        self.reply = reply
        self.then_wait = then_wait
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(self.reply)
                if self.then_wait:
                    self.stop.wait(10)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("trust")) as n:
        n.start_coordinator()
        n.start_agent("h-1", "de")
        n.wait_agents({"h-1"})
        yield n


def metrics(net: Network) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{net.metrics_port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def watch(net: Network, job_id: str) -> list[pb.WatchJobEvent]:
    with net.client() as c:
        return list(c.watch(job_id, follow=False))


FINISHED = (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


def ended(net: Network, job_id: str, timeout: float = 40.0) -> list[pb.WatchJobEvent]:
    """The job's events once it has ended (waited for, bounded)."""

    def done() -> list[pb.WatchJobEvent] | None:
        events = watch(net, job_id)
        return events if events[-1].job_end.state in FINISHED else None

    events: list[pb.WatchJobEvent] = wait_for(done, timeout, f"job {job_id} to end")
    return events


def stub(net: Network) -> tuple[grpc.Channel, pb_grpc.JobServiceStub]:
    channel = grpc.insecure_channel(net.address)
    return channel, pb_grpc.JobServiceStub(channel)


def submit(net: Network, **spec: object) -> pb.Job:
    with net.client() as c:
        return c.submit_spec(pb.JobSpec(**spec))  # type: ignore[arg-type]


# ---------------------------------------------------------------- a seized agent


async def test_a_forged_job_agent_and_target_are_replaced_by_what_the_task_says(trust: Network) -> None:
    async with RawAgent(trust.address, "evil-1", "ru") as evil:
        mine = await asyncio.to_thread(submit, trust, kind="tcp", targets=["127.0.0.1:9"], selector=pb.Selector(agent_ids=["evil-1"]))
        victim = await asyncio.to_thread(submit, trust, kind="tcp", targets=["127.0.0.1:7"], selector=pb.Selector(agent_ids=["h-1"]))
        a = await evil.assignment()
        assert a.job_id == mine.job_id
        forged = answer(a, job_id=victim.job_id, agent_id="h-1", result={"target": "twitter.com:443"})
        await evil.send(forged)
        await evil.until_acked({a.task_id})
    stored = [e.result for e in await asyncio.to_thread(ended, trust, mine.job_id) if e.HasField("result")]
    assert [(r.job_id, r.agent_id, r.result.target, r.result.kind) for r in stored] == [
        (mine.job_id, "evil-1", "127.0.0.1:9", "tcp")
    ]
    planted = [e.result for e in await asyncio.to_thread(watch, trust, victim.job_id) if e.HasField("result")]
    assert all(r.task_id != a.task_id and r.agent_id == "h-1" for r in planted), planted
    rows = await asyncio.to_thread(trust.query, "SELECT job_id, agent_id, target, kind FROM measurements WHERE task_id = ?", (a.task_id,))
    assert rows == [(mine.job_id, "evil-1", "127.0.0.1:9", "tcp")]


async def test_far_future_and_ancient_times_are_clamped_and_the_cli_still_prints(trust: Network) -> None:
    async with RawAgent(trust.address, "evil-2", "ru") as evil:
        job = await asyncio.to_thread(submit, trust, kind="tcp", targets=["127.0.0.1:9", "127.0.0.1:10"], selector=pb.Selector(agent_ids=["evil-2"]))
        first, second = await evil.assignment(), await evil.assignment()
        before = time.time()
        await evil.send(
            answer(first, started_at=1e300, finished_at=4e12),  # a year beyond 9999
            answer(second, started_at=0.0, finished_at=1.0),  # 1970
        )
        await evil.until_acked({first.task_id, second.task_id})
        after = time.time()
    stored = await asyncio.to_thread(
        trust.query, "SELECT task_id, started_at, finished_at FROM measurements WHERE job_id = ?", (job.job_id,)
    )
    rows = {t: (s, f) for t, s, f in stored}
    s, f = rows[first.task_id]
    assert before - 1 <= f <= after + 1 and s <= f, "a future time is clamped to the receive time"
    s, f = rows[second.task_id]
    assert f >= before - 120 and s >= before - 120, "an ancient time is pulled up to the task's due time less the skew"
    out = await asyncio.to_thread(trust.cli, "results", job.job_id)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "9999" not in out.stdout and "1970" not in out.stdout


async def test_nan_negative_and_wrong_kind_results_are_acked_counted_and_fail_their_task(trust: Network) -> None:
    async with RawAgent(trust.address, "evil-3", "ru") as evil:
        job = submit(
            trust, kind="tcp", targets=[f"127.0.0.1:{p}" for p in (10, 11, 12, 13, 14, 15, 18)],
            selector=pb.Selector(agent_ids=["evil-3"]),
        )  # fmt: skip
        tasks = [await evil.assignment() for _ in range(7)]
        bad = [
            answer(tasks[0], result={"data": {"connect_s": math.nan}}),
            answer(tasks[1], result={"data": {"resolve_s": math.inf, "addresses": ["192.0.2.1"]}}),
            answer(tasks[2], result={"duration_s": -1.0}),
            answer(tasks[3], finished_at=math.nan),
            answer(tasks[4], result={"kind": "throughput"}),
            # a tcp result that carries dns data
            answer(tasks[5], result={"data_kind": "dns", "data": {"answers": ["192.0.2.1"]}}),
            # finite, but past any physical ceiling
            answer(tasks[6], result={"data": {"connect_s": 1e308}}),
        ]
        for r in bad:  # one at a time: each is acked, and the session goes on
            await evil.send(r)
            await evil.until_acked({r.task_id})
        await evil.heartbeat()
        # The same session still carries good work.
        more = await asyncio.to_thread(submit, trust, kind="tcp", targets=["127.0.0.1:16"], selector=pb.Selector(agent_ids=["evil-3"]))
        good = await evil.assignment()
        assert good.job_id == more.job_id
        await evil.send(answer(good))
        await evil.until_acked({good.task_id})
    events = await asyncio.to_thread(ended, trust, job.job_id)
    assert not [e for e in events if e.HasField("result")], "nothing refused is stored"
    reasons = sorted(
        r for (r,) in await asyncio.to_thread(trust.query, "SELECT reason FROM tasks WHERE job_id = ? AND state = 'failed'", (job.job_id,))
    )
    assert len(reasons) == 7 and all(r.startswith("result refused: ") for r in reasons), reasons
    assert any("not a finite number" in r for r in reasons) and any("negative" in r for r in reasons)
    assert any("connect_s is not a finite number of magnitude at most 1e+12" in r for r in reasons), reasons
    (end,) = [e.job_end for e in events if e.HasField("job_end")]
    assert end.tasks_failed == 7 and end.tasks_done == 0
    text = await asyncio.to_thread(metrics, trust)
    assert 'vantage_results_dropped_total{reason="result has a bad number"} 5.0' in text
    assert 'vantage_results_dropped_total{reason="result is of another kind than its task"} 2.0' in text
    def listed() -> dict[str, dict[str, int]]:
        with trust.client() as c:
            return {a.agent_id: dict(a.errors) for a in c.agents()}

    errors = (await asyncio.to_thread(listed))["evil-3"]  # counted against the agent too
    assert errors.get("refused: result has a bad number") == 5, errors


async def test_an_unknown_failure_class_is_counted_as_invalid_never_as_its_own_label(trust: Network) -> None:
    async with RawAgent(trust.address, "evil-4", "ru") as evil:
        job = await asyncio.to_thread(submit, trust, kind="tcp", targets=["127.0.0.1:17"], selector=pb.Selector(agent_ids=["evil-4"]))
        a = await evil.assignment()
        # The wire carries failures as enum numbers: one this contract does not know.
        await evil.send(answer(a, result={"failure": 5000, "failure_detail": "x" * 100_000 + ESCAPE}))
        await evil.until_acked({a.task_id})
    text = await asyncio.to_thread(metrics, trust)
    assert 'vantage_measurements_total{kind="tcp",outcome="invalid",region="ru"} 1.0' in text
    assert "xxxxxxxxxx" not in text
    # the unknown class's number is no label value (a sample's value may hold those digits)
    labels = [v for family in text_string_to_metric_families(text) for sample in family.samples
              for v in sample.labels.values()]  # fmt: skip
    assert labels and not any("5000" in v for v in labels)
    (stored,) = [e.result for e in await asyncio.to_thread(ended, trust, job.job_id) if e.HasField("result")]
    assert failure_name(stored.result.failure) == "unknown_failure"
    assert len(stored.result.failure_detail) <= 1024 and "unknown failure class" in stored.result.failure_detail


async def test_a_batch_over_the_cap_is_read_up_to_the_cap(trust: Network) -> None:
    async with RawAgent(trust.address, "evil-5", "ru") as evil:
        fake = [answer(pb.TaskAssignment(task_id=f"fake-{i}", job_id="0" * 16, kind="tcp", target="h:1")) for i in range(1500)]
        await evil.send(*fake)
        await evil.until_acked({f"fake-{i}" for i in range(1000)})
        # A later batch acked, and the 500 counted as dropped, prove the coordinator has
        # read past the long batch and decided about all of it: only then does the absence
        # of their acks mean they were not acked.
        await evil.send(answer(pb.TaskAssignment(task_id="after-the-cap", job_id="0" * 16, kind="tcp", target="h:1")))
        await evil.until_acked({"after-the-cap"})
        dropped = 'vantage_results_dropped_total{reason="batch over the limit"} 500.0'
        await asyncio.to_thread(wait_for, lambda: dropped in metrics(trust), 10, "the 500 counted as dropped")
        assert not {f"fake-{i}" for i in range(1000, 1500)} & evil.acked, "past the cap nothing is acked"


async def test_hello_fields_are_bounded_like_selectors(trust: Network) -> None:
    cases = [
        (pb.Hello(agent_id="evil-6", region="de", labels={"k": ESCAPE}), "hello.labels"),
        (pb.Hello(agent_id="evil-6", region="de", labels={f"k{i}": "v" for i in range(17)}), "hello.labels: at most 16"),
        (pb.Hello(agent_id="evil-6", region="de", version="v" * 100), "hello.version"),
        (pb.Hello(agent_id="evil-6", region="de", kinds=["tcp", "rm -rf"]), "hello.kinds"),
        (pb.Hello(agent_id="evil-6", region="de", kinds=[f"k{i}" for i in range(65)]), "hello.kinds: at most 64"),
        (pb.Hello(agent_id="evil-6", region="de", held_task_ids=["../../etc"]), "hello.held_task_ids"),
    ]
    for hello, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async with RawAgent(trust.address, "", "", hello=hello):
                pass
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
        assert message in (info.value.details() or ""), info.value.details()
    # An agent from before typed results (no result_format) is told to upgrade: its string
    # failures would otherwise read as successes.
    older = pb.Hello(agent_id="older-1", region="de", kinds=["tcp"], version="0.1.0")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async with RawAgent(trust.address, "", "", hello=older):
            pass
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION, info.value
    assert "hello.result_format" in (info.value.details() or "") and "upgrade" in (info.value.details() or "")
    # A newer agent's kinds this coordinator does not know are kept, not refused.
    newer = pb.Hello(agent_id="newer-1", region="de", kinds=["tcp", "traceroute"], version="0.9.0",
                     result_format=pb.RESULT_FORMAT_TYPED)
    async with RawAgent(trust.address, "", "", hello=newer):
        def kinds() -> list[list[str]]:
            with trust.client() as c:
                return [list(a.kinds) for a in c.agents() if a.agent_id == "newer-1"]

        assert await asyncio.to_thread(kinds) == [["tcp", "traceroute"]]


# ---------------------------------------------------------------- an API caller


async def test_a_job_whose_task_count_overflows_uint32_is_refused_and_list_jobs_still_works(trust: Network) -> None:
    agents = [RawAgent(trust.address, f"swarm-{i}", "swarm", kinds=("tcp",)) for i in range(45)]
    for a in agents:
        await a.__aenter__()

    def overflow_then_list() -> None:  # blocking gRPC calls: in a thread, not on the loop
        targets = [f"h{i}.example:80" for i in range(1000)]
        channel, jobs = stub(trust)
        with channel, pytest.raises(grpc.RpcError) as info:
            spec = pb.JobSpec(kind="tcp", targets=targets, every_s=5, count=100_000, selector=pb.Selector(regions=["swarm"]))
            jobs.SubmitJob(pb.SubmitJobRequest(spec=spec), timeout=20)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.count" in (info.value.details() or "") and "4294967295" in (info.value.details() or "")
        with stub(trust)[0] as channel:
            listed = pb_grpc.JobServiceStub(channel).ListJobs(pb.ListJobsRequest(limit=1000), timeout=10)
        assert listed.jobs is not None

    try:
        await asyncio.to_thread(overflow_then_list)
    finally:
        for a in agents:
            await a.__aexit__(None, None, None)
    out = await asyncio.to_thread(trust.cli, "jobs")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"options": {"resolver": "x" * (1024 * 1024)}, "kind": "dns", "targets": ["example.org"]}, "spec.options.resolver: 1048576 characters, more than 2048"),
        ({"kind": "tcp", "targets": ["h.example:1"], "every_s": 5, "count": 1_000_000}, "spec.count: at most 100000 rounds"),
        ({"kind": "tcp", "targets": ["h.example:1"], "every_s": 5, "until": time.time() + 400 * 86400}, "spec.until: is more than 366 days ahead"),
        ({"kind": "http", "targets": ["http://xn--/"]}, "spec.targets[0]"),
        ({"kind": "throughput", "targets": ["http://h.example/"], "options": {"control": "http://xn--/"}}, "spec.options.control"),
        ({"kind": "tcp", "targets": ["h.example:1"], "selector": pb.Selector(labels={"k": ESCAPE})}, "spec.selector.labels"),
    ],
    ids=["1 MB option", "count", "until", "IDNA-invalid host", "IDNA-invalid control", "escape in a selector label"],
)
def test_oversized_and_malformed_specs_are_invalid_argument_never_unknown(
    trust: Network, spec: dict[str, object], message: str
) -> None:
    channel, jobs = stub(trust)
    with channel, pytest.raises(grpc.RpcError) as info:
        jobs.SubmitJob(pb.SubmitJobRequest(spec=pb.JobSpec(**spec)), timeout=20)  # type: ignore[arg-type]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert message in (info.value.details() or ""), info.value.details()


# ---------------------------------------------------------------- a hostile probed server


def test_escape_sequences_in_a_reason_phrase_never_reach_the_terminal(trust: Network) -> None:
    server = EvilServer(f"HTTP/1.1 404 Not{ESCAPE}Found\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
    try:
        job = submit(trust, kind="http", targets=[f"http://127.0.0.1:{server.port}/"], selector=pb.Selector(agent_ids=["h-1"]))
        (r,) = [e.result for e in ended(trust, job.job_id) if e.HasField("result")]
        assert failure_name(r.result.failure) == "http_error" and "\x1b" in r.result.failure_detail, "the data keeps what the server said"
        for args in (("results", job.job_id), ("results", job.job_id, "--follow"), ("job", job.job_id)):
            out = trust.cli(*args)
            assert out.returncode == 0, out.stderr
            assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\x1b" not in out.stderr
        assert "404" in trust.cli("results", job.job_id).stdout
        out = trust.cli("results", job.job_id, "--json")
        assert "\x1b" not in out.stdout and "\\u001b" in out.stdout
        assert json.loads(out.stdout.splitlines()[0])["result"]["failure"] == "http_error"
    finally:
        server.close()


def test_repeated_100_continue_is_an_http_error_and_the_agent_lives_on(trust: Network) -> None:
    flood = b"HTTP/1.1 100 Continue\r\n\r\n" * 5000
    server = EvilServer(flood, then_wait=True)
    try:
        job = submit(
            trust, kind="throughput", targets=[f"http://127.0.0.1:{server.port}/big"],
            selector=pb.Selector(agent_ids=["h-1"]), timeout_s=20,
        )  # fmt: skip
        (r,) = [e.result for e in ended(trust, job.job_id) if e.HasField("result")]
        assert failure_name(r.result.failure) == "http_error", r.result
        assert "interim" in r.result.failure_detail, r.result.failure_detail
    finally:
        server.close()
    again = submit(trust, kind="tcp", targets=[f"127.0.0.1:{trust.metrics_port}"], selector=pb.Selector(agent_ids=["h-1"]))
    assert ended(trust, again.job_id)[-1].job_end.tasks_done == 1, "the agent runs the next job"


# ---------------------------------------------------------------- plaintext


@pytest.mark.parametrize(
    "argv",
    [
        ["agents", "--coordinator", "192.0.2.10:50051"],
        ["submit", "tcp", "h.example:1", "--coordinator", "coordinator.example.net:50051"],
        ["agent", "--coordinator", "127.0.0.1:50051,192.0.2.10:50051", "--region", "de"],
    ],
    ids=["cli to an address", "cli to a name", "agent with one remote coordinator of two"],
)
def test_plaintext_to_a_non_loopback_coordinator_is_refused_before_any_connection(
    tmp_path: Path, argv: list[str]
) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env["VANTAGE_API_TOKEN"] = env["VANTAGE_AGENT_TOKEN"] = "secret-token-1"
    out = subprocess.run(
        [*VANTAGE, *argv, *(["--state-dir", str(tmp_path / "s")] if argv[0] == "agent" else [])],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "would be plaintext" in out.stderr and "--insecure" in out.stderr
    assert "Traceback" not in out.stderr and "secret-token-1" not in out.stderr
