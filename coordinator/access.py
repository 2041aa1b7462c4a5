"""Who may call what: agent and API credentials, their roles, and the interceptor that
checks them before any handler runs.

Credentials
- **Enrolled agents** (``vantage agents add``): a token of their own, bound to the agent
  id and to where the agent stands (region, country, ASN, labels). What such an agent
  says in its hello about where it stands is ignored.
- **The shared agent token** (``VANTAGE_AGENT_TOKEN``): any holder may connect under any
  id that is not enrolled, in any region it names. For labs and the demo; a coordinator
  that serves it off loopback says so in its log at start-up.
- **API tokens** (``vantage tokens add``): a name, a role (``read`` < ``submit`` <
  ``admin``) and quotas.
- **The bootstrap token** (``VANTAGE_API_TOKEN``): the admin, without quotas; it makes
  the first API tokens and enrols the first agents.
- **No token at all**: served only from loopback (the agent role, or the admin role for
  the API), and only while no shared token of that kind is configured.

The coordinator keeps a SHA-256 of each token, never the token: the tokens are 256
random bits, so a fast hash is enough (nothing to guess), and a lookup by hash does not
compare secrets byte by byte. The shared and bootstrap tokens are compared in constant
time.

The interceptor (coordinator/guard.py ``Guard``) takes every call of the three Vantage
services before its handler, and reads a request's body only once the caller is known
and allowed. Health and reflection stay open; they say nothing about agents or jobs.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import grpc
import structlog

from coordinator.auth import peer_is_loopback
from coordinator.model import AgentInfo, ApiToken, Enrollment

log = structlog.get_logger("vantage.coordinator")

ROLES = ("read", "submit", "admin")
AGENT = "agent"
_RANK = {"read": 0, "submit": 1, "admin": 2}
AGENT_TOKEN_PREFIX = "vantage-agent-"
API_TOKEN_PREFIX = "vantage-api-"
MAX_TOKEN_CHARS = 256  # a presented token longer than this is not looked at
# A fleet member that does not know a token reads the credentials again (the holder may
# have made it a moment ago) at most this often for unknown tokens, so guesses cannot load
# the database; a token made within this long of someone's wrong guess may need a retry.
REFRESH_ON_MISS_S = 1.0

# The role each method needs: the agents' stream, the job API's reads and writes, and
# administration. A method of these services missing here is refused (tests hold the
# table to the proto).
METHOD_ROLES: dict[str, str] = {
    "/vantage.v1.AgentService/Connect": AGENT,
    "/vantage.v1.JobService/SubmitJob": "submit",
    "/vantage.v1.JobService/CancelJob": "submit",
    "/vantage.v1.JobService/GetJob": "read",
    "/vantage.v1.JobService/ListJobs": "read",
    "/vantage.v1.JobService/WatchJob": "read",
    "/vantage.v1.JobService/ListAgents": "read",
    "/vantage.v1.JobService/GetVerdicts": "read",
    **{
        f"/vantage.v1.AdminService/{m}": "admin"
        for m in (
            "EnrollAgent",
            "RevokeAgent",
            "ListEnrollments",
            "AddToken",
            "RevokeToken",
            "ListTokens",
            "ListAudit",
        )
    },
}
GUARDED_PREFIX = "/vantage.v1."


def new_token(prefix: str) -> str:
    """A fresh token: the prefix says what it is for (and lets secret scanners find it)."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The caller of one call, as the interceptor found it."""

    name: str  # the audit's actor: a token's name, "bootstrap", "loopback", an agent id
    role: str  # AGENT or one of ROLES
    # What proved it, for the one-session-per-agent rule: "enrolled:<agent id>",
    # "shared", "loopback".
    credential: str
    enrollment: Enrollment | None = None
    token: ApiToken | None = None  # an API token's quotas
    certified: str | None = None  # an agent id its verified client certificate names

    def may(self, role: str) -> bool:
        if role == AGENT or self.role == AGENT:
            return role == self.role
        return _RANK[self.role] >= _RANK[role]


BOOTSTRAP = "bootstrap"
LOOPBACK = "loopback"
_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "vantage_principal", default=None
)


def set_principal(principal: Principal) -> None:
    """The interceptor's word on who makes the current call (``caller``)."""
    _principal.set(principal)


def caller() -> Principal:
    """The caller of the call being served (set by ``Guard`` before the handler runs)."""
    p = _principal.get()
    if p is None:  # a handler reached without the interceptor: a wiring bug, never a pass
        raise RuntimeError("no authenticated caller: the access interceptor is not installed")
    return p


class Denied(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Access:
    """The credentials this coordinator knows, and the check of a presented token."""

    def __init__(
        self,
        agent_token: str | None,
        api_token: str | None,
        *,
        reload: Callable[[], Awaitable[tuple[list[Enrollment], list[ApiToken]]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared_agent_token = agent_token
        self.bootstrap_token = api_token
        self.enrollments: dict[str, Enrollment] = {}
        self.tokens: dict[str, ApiToken] = {}
        self._by_hash: dict[str, Enrollment | ApiToken] = {}
        self._reload = reload
        self._clock = clock
        self._missed_at = -REFRESH_ON_MISS_S  # the last read for an unknown token

    def load(self, enrollments: list[Enrollment], tokens: list[ApiToken]) -> None:
        self.enrollments = {e.agent_id: e for e in enrollments}
        self.tokens = {t.name: t for t in tokens}
        self._reindex()

    def _reindex(self) -> None:
        index: dict[str, Enrollment | ApiToken] = {}
        for e in self.enrollments.values():
            if not e.revoked_at:
                index[e.token_hash] = e
        for t in self.tokens.values():
            if not t.revoked_at:
                index[t.token_hash] = t
        self._by_hash = index

    def put_enrollment(self, e: Enrollment) -> None:
        self.enrollments[e.agent_id] = e
        self._reindex()

    def put_token(self, t: ApiToken) -> None:
        self.tokens[t.name] = t
        self._reindex()

    def enrolled(self, agent_id: str) -> Enrollment | None:
        """The enrolment in force for ``agent_id``, if any."""
        e = self.enrollments.get(agent_id)
        return e if e is not None and not e.revoked_at else None

    async def refresh(self) -> None:
        """Read the credentials again (a fleet: another member may have changed them). A
        revocation this member made while the read was under way is kept: the read may
        have begun before it committed."""
        if self._reload is None:
            return
        enrollments, tokens = await self._reload()
        merged_e = {e.agent_id: e for e in enrollments}
        for agent_id, mine in self.enrollments.items():
            read = merged_e.get(agent_id)
            if mine.revoked_at and read is not None and read.token_hash == mine.token_hash and not read.revoked_at:
                merged_e[agent_id] = mine
        merged_t = {t.name: t for t in tokens}
        for name, t in self.tokens.items():
            read_t = merged_t.get(name)
            if t.revoked_at and read_t is not None and read_t.token_hash == t.token_hash and not read_t.revoked_at:
                merged_t[name] = t
        self.load(list(merged_e.values()), list(merged_t.values()))

    async def authenticate(self, role: str, given: str | None, peer: str, cert: str | None = None) -> Principal:
        """The caller presenting ``given`` (None: no token) from ``peer``, allowed ``role``;
        raises Denied otherwise. ``cert``: the subject CN of the client certificate the TLS
        layer verified (mutual TLS, ``--client-ca``), or None."""
        if given is None and cert is not None and role == AGENT:
            return self._by_certificate(cert)
        if given is None:
            return self._without_token(role, peer)
        shared = self.shared_agent_token if role == AGENT else self.bootstrap_token
        if shared is not None and hmac.compare_digest(given.encode(), shared.encode()):
            if role == AGENT:  # with mutual TLS, still only as the id its certificate names
                return Principal(name="shared agent token", role=AGENT, credential="shared", certified=cert)
            return Principal(name=BOOTSTRAP, role="admin", credential=BOOTSTRAP)
        if len(given) > MAX_TOKEN_CHARS:  # not one this coordinator made (those are 56)
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, "wrong token (not one this coordinator made)")
        h = digest(given)
        found = self._by_hash.get(h)
        if found is None and self._reload is not None and self._clock() - self._missed_at >= REFRESH_ON_MISS_S:
            self._missed_at = self._clock()
            try:
                await self.refresh()  # another member of the fleet may have made it just now
            except Exception as exc:  # the database: logged here; the caller (unknown yet) hears no more
                log.warning("credentials_unreadable", error=" ".join(str(exc).split())[:300])
                raise Denied(grpc.StatusCode.UNAVAILABLE, "the credentials cannot be read right now; retry") from exc
            found = self._by_hash.get(h)
        if found is None:
            other = self.bootstrap_token if role == AGENT else self.shared_agent_token
            if other is not None and hmac.compare_digest(given.encode(), other.encode()):
                raise Denied(grpc.StatusCode.PERMISSION_DENIED, _wrong_kind(role))
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"wrong {'agent' if role == AGENT else 'API'} token "
                         "(unknown or revoked)")  # fmt: skip
        if isinstance(found, Enrollment):
            if role != AGENT:
                raise Denied(grpc.StatusCode.PERMISSION_DENIED, _wrong_kind(role))
            if cert is not None and cert != found.agent_id:
                raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                             f"the client certificate names {cert[:128]!r}; this token is enrolled for agent "
                             f"{found.agent_id}")  # fmt: skip
            # The credential names the token too: a stream opened with a token since revoked
            # (or replaced by a new enrolment) is never "the same credential" as the new one.
            return Principal(name=found.agent_id, role=AGENT, enrollment=found,
                             credential=f"enrolled:{found.agent_id}:{found.token_hash[:16]}")  # fmt: skip
        if role == AGENT:
            raise Denied(grpc.StatusCode.PERMISSION_DENIED, _wrong_kind(role))
        p = Principal(
            name=found.name, role=found.role, credential=f"token:{found.name}", token=found
        )
        if not p.may(role):
            raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                         f"token {found.name!r} has the role {found.role!r}; this call needs {role!r}")  # fmt: skip
        return p

    def _by_certificate(self, cert: str) -> Principal:
        """An agent known by its client certificate alone: the CA vouches for its id; where
        it stands comes from its enrolment when it has one (which also makes it revocable),
        from its hello otherwise."""
        from common.ids import AGENT_ID_RE

        if not AGENT_ID_RE.fullmatch(cert):
            raise Denied(grpc.StatusCode.UNAUTHENTICATED,
                         f"the client certificate's subject CN {cert[:64]!r} is not an agent id")  # fmt: skip
        known = self.enrollments.get(cert)
        if known is not None and known.revoked_at:
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"agent {cert} was revoked")
        return Principal(name=cert, role=AGENT, credential=f"cert:{cert}", enrollment=known, certified=cert)

    def _without_token(self, role: str, peer: str) -> Principal:
        kind = "agent" if role == AGENT else "API"
        configured = self.shared_agent_token if role == AGENT else self.bootstrap_token
        if configured is not None:
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"missing {kind} token")
        if not peer_is_loopback(peer):
            env = "VANTAGE_AGENT_TOKEN" if role == AGENT else "VANTAGE_API_TOKEN"
            raise Denied(
                grpc.StatusCode.UNAUTHENTICATED,
                f"no {kind} token was given, and without one only loopback clients are served "
                f"(give an enrolled token, or set {env} on both sides)",
            )
        if role == AGENT:
            return Principal(name=LOOPBACK, role=AGENT, credential=LOOPBACK)
        return Principal(name=LOOPBACK, role="admin", credential=LOOPBACK)


def bind_agent(principal: Principal, info: AgentInfo, access: Access) -> AgentInfo:
    """The agent a hello may be: an enrolled token's own id, with where it stands as it
    was enrolled (what the hello claims about that is ignored, and a mismatch logged); with
    the shared token or on loopback, any id that was never enrolled, as the hello says.
    Raises Denied otherwise."""
    cert = principal.certified
    if cert is not None and info.agent_id != cert:
        raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                     f"hello.agent_id: the client certificate names agent {cert}, not {info.agent_id}")  # fmt: skip
    known = access.enrollments.get(info.agent_id)  # a revoked id is not up for grabs either
    e = principal.enrollment
    current = access.enrollments.get(e.agent_id) if e is not None else None
    if e is not None and (current is None or current.revoked_at or current.token_hash != e.token_hash):
        # revoked (or enrolled anew) between the stream's opening and its hello
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"agent {e.agent_id}: this credential was revoked")
    if e is None and known is not None and known.revoked_at:
        raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                     f"hello.agent_id: agent {info.agent_id} was enrolled and revoked; enrol it again "
                     "(vantage agents add) to bring it back")  # fmt: skip
    if e is None and cert is not None:
        e = known  # the CA vouches for the id; an enrolment, if any, says where it stands
        if e is None:
            return info
    if e is None:
        if known is not None:
            raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                         f"hello.agent_id: agent {info.agent_id} is enrolled; it connects with its own token")  # fmt: skip
        return info
    if info.agent_id != e.agent_id:
        raise Denied(
            grpc.StatusCode.PERMISSION_DENIED,
            f"hello.agent_id: this token is enrolled for agent {e.agent_id}, not {info.agent_id}",
        )
    bound = replace(info, region=e.region, country=e.country, asn=e.asn, labels=dict(e.labels))
    differ = [
        f for f in ("region", "country", "asn", "labels") if getattr(info, f) != getattr(bound, f)
    ]
    claimed = {f: getattr(info, f) for f in differ if getattr(info, f)}
    if claimed:  # an agent that claims nothing (no --region) just takes its enrolment
        log.warning(
            "agent_claims_ignored", agent_id=e.agent_id, claimed=claimed,
            enrolled={f: getattr(bound, f) for f in claimed},
        )  # fmt: skip
    return bound


def _wrong_kind(role: str) -> str:
    if role == AGENT:
        return "this is an API token; AgentService takes an agent token"
    return "this is an agent token; the job and admin APIs take an API token"


def bearer(metadata: Any) -> str | None:
    """The token of an ``authorization: Bearer ...`` header; None without one."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            token = value.removeprefix("Bearer ").strip()
            return token or None
    return None
