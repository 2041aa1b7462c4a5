"""The probe kinds, by name, in the order the agent and the help list them.

Kept apart from :mod:`common.specs` (which parses each kind's spec) so the analysis core
can name the kinds without importing the parsers.
"""

from __future__ import annotations

KINDS: tuple[str, ...] = ("dns", "tcp", "tls", "http", "throughput", "ping", "traceroute")
