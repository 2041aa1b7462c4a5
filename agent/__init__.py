"""The Vantage agent: dials out to the coordinator, runs probe tasks, keeps results
in a durable outbox until they are acknowledged."""

__version__ = "0.1.0"
