"""The `vantage` command line: one console script for agent, coordinator and client."""

__version__ = "0.1.0"
