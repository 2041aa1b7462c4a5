"""The analysis core: measurements in, sliding windows and verdicts out.

Pure code: no gRPC, aiohttp, prometheus_client or SQLite. The coordinator feeds
``Analyzer.add`` at ingest, calls ``Analyzer.evaluate`` once per tick, and the Prometheus
collector reads ``Analyzer.snapshot`` at scrape time. Method: docs/detection.md.
"""

from coordinator.analysis.analyzer import Analyzer
from coordinator.analysis.model import (
    BLOCK_PAGE,
    DNS_MANIPULATION,
    FAILURES,
    KINDS,
    VERDICTS,
    AnalysisConfig,
    Measurement,
    RegionVerdict,
    Snapshot,
    SuccessRatio,
    TargetVerdict,
    Verdict,
)

__all__ = [
    "BLOCK_PAGE",
    "DNS_MANIPULATION",
    "FAILURES",
    "KINDS",
    "VERDICTS",
    "AnalysisConfig",
    "Analyzer",
    "Measurement",
    "RegionVerdict",
    "Snapshot",
    "SuccessRatio",
    "TargetVerdict",
    "Verdict",
]
