"""Sub-commands of ``vantage``; each module has ``register(subparsers)``."""

from vantage.commands import agent_cmd, client, coordinator_cmd, demo, health, probe

COMMAND_MODULES = (probe, coordinator_cmd, agent_cmd, client, demo, health)
