"""Defaults both sides assume: where a coordinator listens unless told otherwise, and so
where agents, ``vantage health`` and the client commands dial.

Only values that more than one part of the code must agree on belong here.
"""

from __future__ import annotations

GRPC_PORT = 50051  # agents, the job API, the health service
METRICS_PORT = 9477  # Prometheus /metrics

DEFAULT_LISTEN = f"127.0.0.1:{GRPC_PORT}"
DEFAULT_METRICS_LISTEN = f"127.0.0.1:{METRICS_PORT}"
# Agents and clients dial where a coordinator listens by default.
DEFAULT_COORDINATOR = DEFAULT_LISTEN
# The trailer a coordinator that sheds a new agent stream sets (coordinator/admission.py)
# and the agent honours (agent/session.py): milliseconds to wait before trying again.
RETRY_HINT_KEY = "vantage-retry-after-ms"
