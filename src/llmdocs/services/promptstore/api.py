"""HTTP routes of the prompt-store. Routes parse, call service.py and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["prompt-store"])
