"""HTTP routes of spaces and their members: the doc-store keeps them for every
service. Listing takes docs:read, creating docs:admin, granting the admin role in
the space (or docs:admin); `GET /spaces/mine` only a valid token, so a service asking
with a caller's own delegated token always learns that caller's spaces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from llmdocs.core.auth import Principal, require
from llmdocs.core.db import StorableText
from llmdocs.core.errors import Problem
from llmdocs.core.spaces import MAX_NAME, Spaces, forget, sees_everything
from llmdocs.services.docstore.queries import ADMIN
from llmdocs.services.docstore.schemas import (
    Grant,
    MemberList,
    MemberOut,
    Membership,
    MySpaces,
    SpaceCreate,
    SpaceList,
    SpaceOut,
)
from llmdocs.services.docstore.service import DocStore

router = APIRouter(tags=["spaces"])
Reader = Annotated[Principal, Depends(require("docs:read"))]
Writer = Annotated[Principal, Depends(require("docs:write"))]
Anyone = Annotated[Principal, Depends(require())]
SpaceName = Annotated[str, Path(min_length=1, max_length=MAX_NAME)]
Subject = Annotated[StorableText, Path(min_length=1, max_length=200)]


def store_of(request: Request) -> DocStore:
    store: DocStore = request.app.state.docstore
    return store


@router.get("/spaces/mine", response_model=MySpaces,
            summary="Your own memberships (what other services ask for you)")
async def my_spaces(request: Request, principal: Anyone) -> MySpaces:
    found = await store_of(request).memberships(request.app, principal)
    return MySpaces(subject=principal.subject,
                    spaces=[Membership(name=n, role=r) for n, r in sorted(found.items())])


@router.get("/spaces", response_model=SpaceList, summary="The spaces you see, your role in each")
async def list_spaces(request: Request, _: Reader, spaces: Spaces) -> SpaceList:
    return SpaceList(items=await store_of(request).spaces_of(spaces))


@router.post("/spaces", response_model=SpaceOut, status_code=201,
             summary="Create a space (docs:admin); you become its admin")
async def create_space(request: Request, response: Response, body: SpaceCreate,
                       principal: Writer) -> SpaceOut:
    if not (principal.allows(ADMIN) or sees_everything(principal)):
        raise Problem(403, f"Creating a space takes the scope {ADMIN}.")
    made = await store_of(request).create_space(body.name, body.description, principal)
    forget(request.app, principal.subject)
    response.headers["Location"] = f"/spaces/{made.name}/members"
    return made


@router.get("/spaces/{name}/members", response_model=MemberList,
            summary="A space's members and their roles")
async def list_members(request: Request, name: SpaceName, reader: Reader,
                       spaces: Spaces) -> MemberList:
    found = await store_of(request).members(name, spaces, override=reader.allows(ADMIN))
    return MemberList(space=name, items=found)


async def _may_grant(request: Request, name: str, principal: Principal,
                     spaces: Spaces) -> DocStore:
    """The store, once the caller may grant in `name` (its admin, or docs:admin)."""
    store = store_of(request)
    await store.space_for(name, spaces, admin=True, override=principal.allows(ADMIN))
    return store


@router.put("/spaces/{name}/members/{subject}", response_model=MemberOut,
            summary="Grant a role in a space (viewer, editor, admin)")
async def grant(request: Request, name: SpaceName, subject: Subject, body: Grant,
                principal: Writer, spaces: Spaces) -> MemberOut:
    store = await _may_grant(request, name, principal, spaces)
    member = await store.grant(name, subject, body.role, principal.subject)
    forget(request.app, subject)  # here at once; other services within their cache time
    return member


@router.delete("/spaces/{name}/members/{subject}", status_code=204, response_class=Response,
               summary="Revoke a membership")
async def revoke(request: Request, name: SpaceName, subject: Subject, principal: Writer,
                 spaces: Spaces) -> Response:
    store = await _may_grant(request, name, principal, spaces)
    await store.revoke(name, subject)
    forget(request.app, subject)
    return Response(status_code=204)
