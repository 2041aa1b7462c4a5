"""What both sides of the wire share: the agent, the coordinator, its analysis and the CLI
all import from here, and nothing here imports from them.

What belongs here: pure definitions and parsing that must agree on both sides, one
definition each: the closed set of failure classes (:mod:`common.failures`), the probe
kinds and their spec parsing and limits (:mod:`common.kinds`, :mod:`common.specs`), the
id, region, country and label-key rules (:mod:`common.ids`), address and HOST:PORT parsing
(:mod:`common.address`, :mod:`common.hostport`) and the defaults both sides assume
(:mod:`common.defaults`). The wire contract itself, and its typed results in plain values
(:mod:`protos.results`), live in ``protos/``, which both sides import too.

What does not: anything with I/O (sockets, DNS, files, clocks), the agent's decisions
(the target policy, how exceptions map onto failure classes, running probes) and the
coordinator's (scheduling, verdicts, storage). Importing a module here must not pull in
grpc, aiohttp, dnspython, prometheus_client, SQLite or protobuf; :mod:`common.specs`
needs yarl (URL parsing), nothing more.
"""
