"""AdminService: enrolled agents, API tokens and the audit record (the admin role).

A new token is made here, returned once, and only its hash is stored; every change is
written, with its audit record, before the call returns. Revoking an agent ends its
session at once; revoking a token refuses it from the next call on.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import grpc
import structlog

from common.ids import AGENT_ID_RE, COUNTRY_RE, REGION_RE, labels_problem
from coordinator import convert
from coordinator.access import (
    AGENT_TOKEN_PREFIX,
    API_TOKEN_PREFIX,
    BOOTSTRAP,
    LOOPBACK,
    ROLES,
    Access,
    caller,
    digest,
    new_token,
)
from coordinator.core import Coordinator
from coordinator.model import ApiToken, Enrollment
from coordinator.store import PutApiToken, PutEnrollment
from protos.vantage.v1 import vantage_pb2 as pb
from protos.vantage.v1 import vantage_pb2_grpc as pb_grpc

log = structlog.get_logger("vantage.coordinator")

TOKEN_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED_NAMES = frozenset({BOOTSTRAP, LOOPBACK, ""})
MAX_QUOTA = 10_000_000
MAX_BYTES_QUOTA = 1024**5  # 1 PiB an hour
AUDIT_DEFAULT = 1000
AUDIT_MAX = 10_000


class AdminServicer(pb_grpc.AdminServiceServicer):  # type: ignore[misc]
    def __init__(self, core: Coordinator, access: Access, clock: Any = time.time) -> None:
        self.core = core
        self.access = access
        self.clock = clock

    @staticmethod
    async def _invalid(context: Any, message: str) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def _store(self, context: Any, changes: list[Any], kept: str = "") -> None:
        """Write ``changes`` durably; on a store error answer UNAVAILABLE (``kept`` says
        what holds here even so)."""
        try:
            await self.core.store.write(changes)
        except Exception as exc:  # any engine's error, or a fleet's fence
            log.error("admin_write_failed", error=" ".join(str(exc).split())[:300])
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"could not store it{kept}; retry")

    async def EnrollAgent(
        self, request: pb.EnrollAgentRequest, context: Any
    ) -> pb.EnrollAgentResponse:
        who = caller().name
        if not AGENT_ID_RE.fullmatch(request.agent_id):
            await self._invalid(
                context, "agent_id: missing or malformed (letters, digits and _.:- , at most 128)"
            )
        if not REGION_RE.fullmatch(request.region):
            await self._invalid(
                context, "region: missing or malformed (letters, digits and _.:- , at most 63)"
            )
        country = request.country.upper()
        if country and not COUNTRY_RE.fullmatch(country):
            await self._invalid(context, "country: must be empty or a two-letter country code")
        problem = labels_problem(dict(request.labels))
        if problem is not None:
            await self._invalid(context, f"labels: {problem}")
        if self.access.enrolled(request.agent_id) is not None:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"agent_id: agent {request.agent_id} is enrolled already; revoke it first "
                f"(vantage agents revoke {request.agent_id}) to enrol it again with a new token",
            )
        token = new_token(AGENT_TOKEN_PREFIX)
        e = Enrollment(
            agent_id=request.agent_id, token_hash=digest(token), region=request.region, country=country,
            asn=request.asn, labels=dict(request.labels), created_at=self.clock(), created_by=who,
        )  # fmt: skip
        audit = self.core.audit(
            who, "enroll_agent", e.agent_id, region=e.region, country=e.country, asn=e.asn
        )
        await self._store(context, [PutEnrollment(e), audit])
        self.access.put_enrollment(e)
        # A session under this id (the shared token, a certificate, an older token) ends: from
        # now on the id is the enrolled agent's, where it was enrolled.
        ended = self.core.end_session(e.agent_id, "enrolled: the agent connects with its own token")
        log.info("agent_enrolled", agent_id=e.agent_id, region=e.region, by=who, session_ended=ended)
        return convert.enrolled_to_pb(e, token)

    async def RevokeAgent(self, request: pb.RevokeAgentRequest, context: Any) -> pb.Enrollment:
        who = caller().name
        e = self.access.enrolled(request.agent_id)
        if e is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"agent_id: no enrolment in force for {request.agent_id[:128]!r}",
            )
        assert e is not None
        revoked = dataclasses.replace(e, revoked_at=self.clock())
        # In force here at once (nothing awaited before the session ends), stored after.
        self.access.put_enrollment(revoked)
        ended = self.core.end_session(e.agent_id, "enrolment revoked")
        await self._store(context, [PutEnrollment(revoked), self.core.audit(who, "revoke_agent", e.agent_id)],
                          kept=" (it is revoked on this coordinator until it restarts)")  # fmt: skip
        log.warning("agent_revoked", agent_id=e.agent_id, by=who, session_ended=ended)
        return convert.enrollment_to_pb(revoked)

    async def ListEnrollments(
        self, request: pb.ListEnrollmentsRequest, context: Any
    ) -> pb.ListEnrollmentsResponse:
        rows = sorted(self.access.enrollments.values(), key=lambda e: e.agent_id)
        return convert.enrollments_to_pb(rows)

    async def AddToken(self, request: pb.AddTokenRequest, context: Any) -> pb.AddTokenResponse:
        who = caller().name
        if not TOKEN_NAME_RE.fullmatch(request.name) or request.name in RESERVED_NAMES:
            await self._invalid(
                context,
                "name: lower-case letters, digits and ._- (at most 64), not 'bootstrap' or 'loopback'",
            )
        if request.role not in ROLES:
            await self._invalid(context, f"role: one of {', '.join(ROLES)}")
        for field in ("max_active_jobs", "max_tasks_per_hour"):
            if getattr(request, field) > MAX_QUOTA:
                await self._invalid(context, f"{field}: at most {MAX_QUOTA} (0: no limit)")
        if request.max_bytes_per_hour > MAX_BYTES_QUOTA:
            await self._invalid(context, f"max_bytes_per_hour: at most {MAX_BYTES_QUOTA} (1 PiB; 0: no limit)")
        old = self.access.tokens.get(request.name)
        if old is not None and not old.revoked_at:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"name: a token {request.name!r} is in force; revoke it first (vantage tokens revoke {request.name})",
            )
        if old is not None:  # its jobs, quota use and audit stay its own: a name is never reused
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"name: a token {request.name!r} existed and was revoked; names are not reused (its jobs "
                "and audit record stay its own): pick another",
            )
        secret = new_token(API_TOKEN_PREFIX)
        t = ApiToken(
            name=request.name, token_hash=digest(secret), role=request.role,
            max_active_jobs=request.max_active_jobs, max_tasks_per_hour=request.max_tasks_per_hour,
            max_bytes_per_hour=request.max_bytes_per_hour, created_at=self.clock(), created_by=who,
        )  # fmt: skip
        audit = self.core.audit(
            who, "add_token", t.name, role=t.role, max_active_jobs=t.max_active_jobs,
            max_tasks_per_hour=t.max_tasks_per_hour, max_bytes_per_hour=t.max_bytes_per_hour,
        )  # fmt: skip
        await self._store(context, [PutApiToken(t), audit])
        self.access.put_token(t)
        log.info("api_token_added", name=t.name, role=t.role, by=who)
        return convert.token_added_to_pb(t, secret)

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Any) -> pb.ApiToken:
        who = caller().name
        t = self.access.tokens.get(request.name)
        if t is None or t.revoked_at:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"name: no token in force named {request.name[:64]!r}"
            )
        assert t is not None
        revoked = dataclasses.replace(t, revoked_at=self.clock())
        self.access.put_token(revoked)  # refused from the next call on, before the write
        await self._store(context, [PutApiToken(revoked), self.core.audit(who, "revoke_token", t.name)],
                          kept=" (it is revoked on this coordinator until it restarts)")  # fmt: skip
        log.warning("api_token_revoked", name=t.name, by=who)
        return convert.token_to_pb(revoked)

    async def ListTokens(
        self, request: pb.ListTokensRequest, context: Any
    ) -> pb.ListTokensResponse:
        rows = sorted(self.access.tokens.values(), key=lambda t: t.name)
        return convert.tokens_to_pb(rows)

    async def ListAudit(self, request: pb.ListAuditRequest, context: Any) -> pb.ListAuditResponse:
        if request.limit > AUDIT_MAX:
            await self._invalid(context, f"limit: at most {AUDIT_MAX}")
        if request.since != request.since or request.since < 0:  # NaN or negative
            await self._invalid(context, "since: Unix seconds, 0 or more")
        try:
            rows = await self.core.store.read_audit(
                request.since, limit=request.limit or AUDIT_DEFAULT
            )
        except Exception as exc:  # the database: say so
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"cannot read the audit record: {exc}"[:300]
            )
        return convert.audit_records_to_pb(rows)
