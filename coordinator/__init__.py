"""The Vantage coordinator: job API, agent sessions, scheduler, store, analysis and
Prometheus metrics on one process."""
