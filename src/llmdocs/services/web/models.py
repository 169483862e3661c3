"""Tables of the web portal: sessions, and the sign-in links already used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from llmdocs.core.db import Base, utcnow


class WebSession(Base):
    """A signed-in browser: who, with which rights, until when. The cookie holds a random
    value; only its hash is kept, so a copy of the table signs nobody in."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie
    subject: Mapped[str] = mapped_column(String(200), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UsedLink(Base):
    """A sign-in link's id once used: a link signs in once."""

    __tablename__ = "web_used_links"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
