"""The network-namespace lab: see deploy/lab/README.md."""

from deploy.lab.lab import Lab, LabError, cleanup_prefix, parse_metrics

__all__ = ["Lab", "LabError", "cleanup_prefix", "parse_metrics"]
