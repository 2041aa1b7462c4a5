"""A hostile server's odd answers read ``http_error`` (the exchange's own failure), never
``unknown_failure``; and the upload parser reads a final answer that arrives in the same
segment as an interim one."""

from __future__ import annotations

import asyncio

import pytest

from agent.probes import parse_spec, run_probe
from agent.probes.base import Limits
from common.failures import HTTP_ERROR
from tests.probes.servers import read_request, tcp_server


def answering(head: str):  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head.encode("utf-8") + b"x" * 100)
        await writer.drain()
        await asyncio.sleep(0.05)

    return handler


@pytest.mark.parametrize(
    "head",
    [
        "HTTP/1.1 \u00b200 OK\r\nContent-Length: 100\r\n\r\n",  # a superscript two: isdigit, not int
        "HTTP/1.1 2000 OK\r\nContent-Length: 100\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: " + "9" * 5000 + "\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \u0661\u0660\u0660\r\n\r\n",  # Arabic-Indic digits
    ],
)
async def test_odd_status_lines_and_lengths_read_http_error(limits: Limits, head: str) -> None:
    async with tcp_server(answering(head)) as port:
        spec = parse_spec("throughput", f"http://127.0.0.1:{port}/big", {"timeout": "3"}, limits)
        outcome = await run_probe(spec, limits)
    assert outcome.failure == HTTP_ERROR, (outcome.failure, outcome.failure_detail)


async def test_an_upload_reads_a_final_answer_sent_with_its_interim_one(limits: Limits) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1.0)  # and then nothing: the answer is all in that one segment

    async with tcp_server(handler) as port:
        spec = parse_spec("throughput", f"http://127.0.0.1:{port}/up",
                          {"timeout": "5", "direction": "upload", "max_bytes": "64k"}, limits)  # fmt: skip
        outcome = await run_probe(spec, limits)
    assert outcome.failure is None, outcome.failure_detail
    assert outcome.data["status"] == 201 and outcome.data["complete"] is True, outcome.data
