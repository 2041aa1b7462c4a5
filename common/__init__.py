"""What both sides of the wire share: the agent, the coordinator, its analysis and the CLI
all import from here, and nothing here imports from them.

What belongs here: pure definitions that must agree on both sides, one definition each:
the closed set of failure classes (:mod:`common.failures`) and the probe kinds
(:mod:`common.kinds`).

What does not: anything with I/O (sockets, DNS, files, clocks), the agent's decisions
(the target policy, how exceptions map onto failure classes, running probes) and the
coordinator's (scheduling, verdicts, storage).
"""
