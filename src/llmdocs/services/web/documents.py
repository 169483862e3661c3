"""A document's pages: the rendered document, its versions and diffs, its downloads,
and its provenance."""

from __future__ import annotations

from fastapi import APIRouter

from llmdocs.services.web.pages import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)
