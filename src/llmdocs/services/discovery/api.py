"""HTTP routes of the discovery-agent. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["discovery-agent"])
