"""The web portal's own settings (`LLMDOCS_WEB_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    # LLMDOCS_WEB_URL / _PORT belong to the core settings: ignore what is not ours
    model_config = SettingsConfigDict(env_prefix="LLMDOCS_WEB_", env_file=".env",
                                      extra="ignore")

    session_hours: float = Field(12.0, gt=0, le=24 * 30)  # a sign-in lasts this long
    link_minutes: float = Field(15.0, gt=0, le=24 * 60)  # a sign-in link is good this long
    # the identity provider's client for authorization-code sign-in (with PKCE: no secret)
    oidc_client_id: str = "llmdocs-web"
    oidc_scopes: str = "openid profile"
