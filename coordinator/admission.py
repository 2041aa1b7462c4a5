"""Admission of new agent streams while the coordinator is overloaded.

A storm of connections (a whole network dialling in after the coordinator restarts) is
taken in one pass: gRPC's queue of streams not yet handled holds 50,000
(coordinator/server.py ``MAX_PENDING_STREAMS``), and the handlers then work through it
at thousands a second. What is shed is shed on purpose, never at random: when the event
loop runs more than ``SHED_LAG_S`` behind (every session's messages wait that long to be
read), a new stream is refused with RESOURCE_EXHAUSTED, a message that says why, and a
retry hint in its trailers (``vantage-retry-after-ms``, which the agent honours on top of
its own backoff: agent/session.py ``retry_hint``). The sessions already open keep being
served: refusing newcomers is what lets the coordinator catch up with them.

The hint is drawn at random from ``[SHED_RETRY_S + lag, 3 * (SHED_RETRY_S + lag)]`` (5 + lag
to 15 + 3 x lag seconds), so the refused agents do not come back together.
"""

from __future__ import annotations

import random
from typing import Any

import grpc

from common.defaults import RETRY_HINT_KEY

SHED_LAG_S = 5.0
SHED_RETRY_S = 5.0


def retry_after_s(lag: float, rng: random.Random) -> float:
    """How long a refused agent is asked to wait."""
    base = SHED_RETRY_S + max(0.0, lag)
    return rng.uniform(base, 3 * base)


async def admit(lag: float, context: Any, rng: random.Random) -> bool:
    """Refuse the stream (aborting it with the hint) when the loop is ``lag`` seconds
    behind, over ``SHED_LAG_S``; True when it is admitted."""
    if lag <= SHED_LAG_S:
        return True
    wait = retry_after_s(lag, rng)
    context.set_trailing_metadata(((RETRY_HINT_KEY, str(round(wait * 1000))),))
    await context.abort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"coordinator overloaded (its event loop is {lag:.1f}s behind); retry in {wait:.0f}s",
    )
    return False  # not reached: abort raises
