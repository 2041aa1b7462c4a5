"""A durable, bounded store-and-forward outbox for results (as RIPE Atlas probes keep
results until the controller has them).

Each result is one file in ``<state_dir>/outbox/``, written to a temporary name, flushed
to disk and renamed, so a crash leaves either the whole result or nothing. A result is
deleted only when the coordinator acks its task id. When the outbox holds ``max_items``,
the oldest result is dropped to make room: counted in ``dropped`` and logged.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from pathlib import Path

import structlog

log = structlog.get_logger("vantage.agent")

SUFFIX = ".result"


class Outbox:
    def __init__(self, directory: Path, *, max_items: int = 10_000) -> None:
        if max_items < 1:
            raise ValueError("max_items: must be at least 1")
        self.directory = directory
        self.max_items = max_items
        self.dropped = 0
        self._items: OrderedDict[str, tuple[Path, bytes]] = OrderedDict()
        self._seq = 0
        self._lock = asyncio.Lock()
        self._writing: set[str] = set()  # task ids being written (not yet held)

    def load(self) -> int:
        """Read what a previous run left (call once at start, before the loop runs)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write a crash interrupted: never acked
                continue
            if not path.name.endswith(SUFFIX):
                continue
            seq_text, _, task_id = path.name[: -len(SUFFIX)].partition("-")
            if not seq_text.isdigit() or not task_id:
                continue
            entries.append((int(seq_text), task_id, path))
        for seq, task_id, path in sorted(entries):
            self._items[task_id] = (path, path.read_bytes())
            self._seq = max(self._seq, seq)
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._items

    def task_ids(self) -> list[str]:
        return list(self._items)

    def get(self, task_id: str) -> bytes | None:
        item = self._items.get(task_id)
        return item[1] if item else None

    def pending(self) -> list[tuple[str, bytes]]:
        """Every unacked result, oldest first."""
        return [(task_id, blob) for task_id, (_, blob) in self._items.items()]

    async def put(self, task_id: str, blob: bytes) -> None:
        """Store ``blob`` durably; returns once it is on disk. Writes of different results
        run at once (each fsync waits for the disk: taken one at a time, the disk's fsync
        latency would bound the results an agent stores per second, whatever its
        concurrency); only the choice of name and the room-making are taken in turn.
        Results still being written cannot be dropped: while every one of ``max_items``
        is in flight the outbox holds up to the agent's concurrency more."""
        async with self._lock:
            if task_id in self._items or task_id in self._writing:
                return
            while self._items and len(self._items) + len(self._writing) >= self.max_items:
                old_id, (old_path, _) = self._items.popitem(last=False)
                self.dropped += 1
                await asyncio.to_thread(old_path.unlink, True)
                log.warning(
                    "outbox_full_dropped_oldest", task_id=old_id, dropped_total=self.dropped,
                    max_items=self.max_items,
                )
            self._seq += 1
            path = self.directory / f"{self._seq:012d}-{task_id}{SUFFIX}"
            self._writing.add(task_id)
        try:
            await asyncio.to_thread(_write_durably, path, blob)
        finally:
            self._writing.discard(task_id)
        self._items[task_id] = (path, blob)

    async def ack(self, task_ids: list[str]) -> int:
        paths = []
        for task_id in task_ids:
            item = self._items.pop(task_id, None)
            if item is not None:
                paths.append(item[0])
        if paths:
            await asyncio.to_thread(_unlink_all, paths)
        return len(paths)


def _write_durably(path: Path, blob: bytes) -> None:
    """The file's bytes, then its name: the rename is an entry in the directory, which a
    power loss (unlike a SIGKILL) can lose unless the directory is synced too."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
