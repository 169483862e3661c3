"""The service registry, no HTTP: which services exist, what they can do, how healthy.
A registration belongs to its creator, and only llmdocs' own names may take its tokens."""

from __future__ import annotations

import json
from collections import Counter

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.core.auth import Principal
from llmdocs.core.db import Database, utcnow
from llmdocs.core.events import EventBus
from llmdocs.core.events.envelope import make_event
from llmdocs.openapi import Operation
from llmdocs.services import builtin
from llmdocs.services.orchestrator.errors import Invalid, Refused, Unknown
from llmdocs.services.orchestrator.models import RegisteredService
from llmdocs.services.orchestrator.schemas import (
    EcosystemHealth,
    HealthStatus,
    HealthUpdate,
    RegistrationResult,
    ServiceDetail,
    ServiceHealth,
    ServiceRegistration,
    ServiceSummary,
)

_operations = TypeAdapter(list[Operation])
# what a service offers as MCP tools until its allow-list says otherwise
READ_ONLY_METHODS = frozenset({"get", "head"})
# services and holders of this scope change anyone's registrations and runs
ADMIN_SCOPE = "workflows:admin"
# the worse status wins when the ecosystem is summed up
_SEVERITY: dict[HealthStatus, int] = {"healthy": 0, "unknown": 1, "degraded": 2,
                                      "unhealthy": 3, "unreachable": 3}


def groups_of(operations: list[Operation]) -> dict[str, dict[str, list[str]]]:
    """tag → resource → operation ids, the capability map people read."""
    groups: dict[str, dict[str, list[str]]] = {}
    for op in operations:
        groups.setdefault(op.tag, {}).setdefault(op.resource, []).append(op.operation_id)
    return groups


def _health(row: RegisteredService) -> ServiceHealth:
    return ServiceHealth.model_validate({
        "status": row.health_status, "reason": row.health_reason,
        "changed_at": row.health_changed_at, "checked_at": row.health_checked_at})


def summary(row: RegisteredService) -> ServiceSummary:
    return ServiceSummary(
        name=row.name, base_url=row.base_url, title=row.title, version=row.version,
        spec_hash=row.spec_hash, operation_count=row.operation_count, auth=row.auth,
        health_path=row.health_path, owner=row.owner, health=_health(row),
        registered_at=row.registered_at, updated_at=row.updated_at)


def allowed_tools(operations: list[Operation], allow_list: str | None) -> list[str]:
    """The operation ids offered as MCP tools: the stored allow-list's, or without one
    the read-only operations."""
    allowed = None if allow_list is None else set(json.loads(allow_list))
    return [op.operation_id for op in operations
            if (op.method in READ_ONLY_METHODS if allowed is None
                else op.operation_id in allowed)]


def detail(row: RegisteredService) -> ServiceDetail:
    operations = _operations.validate_json(row.operations)
    return ServiceDetail(
        **summary(row).model_dump(), api_prefix=row.api_prefix, spec_url=row.spec_url,
        openapi_version=row.openapi_version, operations=operations,
        groups=groups_of(operations),
        tool_operations=allowed_tools(operations, row.tool_operations))


def _check_change(caller: Principal, name: str, row: RegisteredService | None) -> None:
    """A reserved name is registered or changed only by llmdocs services; any other
    name is free, and its registration then changed only by its owner, a service or a
    workflow admin (one from before owners were kept is the services')."""
    if builtin(name) is not None:
        if not caller.is_service:
            raise Refused(f"The name {name!r} is reserved for llmdocs' own service: "
                          "only llmdocs services register, change or remove it.")
    elif row is not None and not caller.may_touch(row.owner, ADMIN_SCOPE):
        raise Refused(f"The service {name!r} belongs to {row.owner or 'llmdocs'}: only "
                      f"its owner, a service or the {ADMIN_SCOPE} scope may change it.")


def _check_auth(caller: Principal, reg: ServiceRegistration) -> None:
    if reg.auth == "service_token" and not (caller.is_service and builtin(reg.name)):
        reason = ("only llmdocs' own services, registered by a service, take llmdocs' "
                  "tokens; a third-party service gets the credentials the operator "
                  "configures for it (LLMDOCS_ORCHESTRATOR_TOOL_CREDENTIALS)")
        raise Invalid(f"auth 'service_token' is refused: {reason}.",
                      errors=[{"field": "auth", "message": reason}])


def _check_tools(reg: ServiceRegistration) -> None:
    """An allow-list names operations of the spec registered with it."""
    unknown = sorted(set(reg.tool_operations or ()) - {op.operation_id
                                                       for op in reg.operations})
    if unknown:
        reason = f"no operation of the spec has the id(s): {', '.join(unknown)[:500]}"
        raise Invalid(f"tool_operations is refused: {reason}.",
                      errors=[{"field": "tool_operations", "message": reason}])


async def _changeable(session: AsyncSession, name: str, caller: Principal
                      ) -> RegisteredService:
    """The registration, locked, if it exists and the caller may change it."""
    row = await session.get(RegisteredService, name, with_for_update=True)
    if row is None:
        raise Unknown(f"No service named {name!r} is registered.")
    _check_change(caller, name, row)
    return row


class Registry:
    def __init__(self, database: Database, events: EventBus) -> None:
        self.database = database
        self.events = events

    async def register(self, reg: ServiceRegistration, caller: Principal
                       ) -> RegistrationResult:
        """Insert (owned by the caller) or update; registering the same spec hash again
        changes nothing. Two replicas racing to insert the same new name: the loser
        updates instead, if the caller may."""
        _check_auth(caller, reg)
        _check_tools(reg)
        try:
            result = await self._upsert(reg, caller)
        except IntegrityError:
            result = await self._upsert(reg, caller)
        if result.changed:
            await self.events.publish(make_event(
                "orchestrator", "llmdocs.service.registered",
                {"service": reg.name, "spec_hash": reg.spec_hash, "created": result.created,
                 "operation_count": len(reg.operations)}, subject=reg.name))
        return result

    async def _upsert(self, reg: ServiceRegistration, caller: Principal
                      ) -> RegistrationResult:
        now = utcnow()
        values = {
            "base_url": str(reg.base_url).rstrip("/"), "api_prefix": reg.api_prefix,
            "spec_url": reg.spec_url, "spec_hash": reg.spec_hash, "title": reg.title,
            "version": reg.version, "openapi_version": reg.openapi_version, "auth": reg.auth,
            "health_path": reg.health_path,
            "operations": _operations.dump_json(reg.operations, by_alias=True).decode(),
            "operation_count": len(reg.operations), "updated_at": now,
        }
        if reg.tool_operations is not None:  # else the allow-list stays as it is
            values["tool_operations"] = json.dumps(sorted(set(reg.tool_operations)))
        async with self.database.transaction() as session:
            row = await session.get(RegisteredService, reg.name, with_for_update=True)
            _check_change(caller, reg.name, row)
            if row is None:
                session.add(RegisteredService(name=reg.name, registered_at=now,
                                              owner=caller.subject,
                                              health_status="unknown", **values))
                return RegistrationResult(name=reg.name, spec_hash=reg.spec_hash,
                                          created=True, changed=True)
            unchanged = all(getattr(row, key) == value for key, value in values.items()
                            if key not in ("updated_at", "operations"))
            if unchanged:
                return RegistrationResult(name=reg.name, spec_hash=reg.spec_hash,
                                          created=False, changed=False)
            for key, value in values.items():
                setattr(row, key, value)
            return RegistrationResult(name=reg.name, spec_hash=reg.spec_hash,
                                      created=False, changed=True)

    async def _row(self, name: str) -> RegisteredService:
        async with self.database.session() as session:
            row = await session.get(RegisteredService, name)
        if row is None:
            raise Unknown(f"No service named {name!r} is registered.")
        return row

    async def rows(self) -> list[RegisteredService]:
        async with self.database.session() as session:
            return list(await session.scalars(
                select(RegisteredService).order_by(RegisteredService.name)))

    async def summaries(self) -> list[ServiceSummary]:
        return [summary(row) for row in await self.rows()]

    async def get(self, name: str) -> ServiceDetail:
        return detail(await self._row(name))

    async def details(self) -> list[ServiceDetail]:
        return [detail(row) for row in await self.rows()]

    async def remove(self, name: str, caller: Principal) -> None:
        async with self.database.transaction() as session:
            row = await _changeable(session, name, caller)
            await session.delete(row)

    async def set_health(self, name: str, update: HealthUpdate, caller: Principal
                         ) -> ServiceHealth:
        now = utcnow()
        async with self.database.transaction() as session:
            row = await _changeable(session, name, caller)
            if row.health_status != update.status or row.health_changed_at is None:
                row.health_changed_at = now
            row.health_status = update.status
            row.health_reason = update.reason
            row.health_checked_at = now
            return _health(row)

    async def ecosystem(self) -> EcosystemHealth:
        services = {row.name: _health(row) for row in await self.rows()}
        counts = Counter(h.status for h in services.values())
        worst: HealthStatus = "unknown"
        if services:
            worst = max((h.status for h in services.values()), key=_SEVERITY.__getitem__)
            worst = "unhealthy" if worst == "unreachable" else worst
        return EcosystemHealth(status=worst, counts=dict(counts), services=services)
