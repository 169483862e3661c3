"""The doc-store's own settings (`LLMDOCS_DOCSTORE_*`): the upload limit and where
blobs live."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class DocStoreSettings(BaseSettings):
    """`blob_url`: empty for `<data dir>/blobs`, `file:///path`, or `s3://bucket/prefix`
    (credentials from the usual AWS chain; `s3_endpoint_url` for MinIO and the like)."""

    model_config = SettingsConfigDict(env_prefix="LLMDOCS_DOCSTORE_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    blob_url: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
