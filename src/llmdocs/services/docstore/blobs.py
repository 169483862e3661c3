"""Where binary artifacts live: the filesystem under the data dir, or S3-compatible
storage. Keys are written once (one per version), so removing a failed write's blob
never touches another version's."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from llmdocs.core.config import Settings
from llmdocs.core.crypto import KeyRing, open_bytes
from llmdocs.services.docstore.settings import DocStoreSettings

_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def ping(self) -> float: ...


def is_key(key: str) -> bool:
    return _KEY.match(key) is not None


def check_key(key: str) -> str:
    """Keys are made by the store itself; refuse anything path-like all the same."""
    if not is_key(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class FileBlobStore:
    """Blobs as files under `root`; written to a temp file, fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def ping(self) -> float:
        started = time.perf_counter()
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        return (time.perf_counter() - started) * 1000


class S3BlobStore:
    """Blobs as objects in an S3-compatible bucket, under `prefix`."""

    def __init__(self, bucket: str, prefix: str = "", **client_args: Any) -> None:
        import boto3  # type: ignore[import-untyped]

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client("s3", **client_args)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket,
                                Key=self._name(key), Body=data)

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            body: bytes = self.client.get_object(Bucket=self.bucket,
                                                 Key=self._name(key))["Body"].read()
            return body

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket,
                                Key=self._name(key))

    async def ping(self) -> float:
        started = time.perf_counter()
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        return (time.perf_counter() - started) * 1000


class SealedBlobStore:
    """Blobs encrypted (an envelope per blob, see `llmdocs.core.crypto`) on their way to
    `inner`, disk or S3 alike; a blob stored before encryption was on reads as it is,
    and an encrypted one without the ring is an error naming its key, never garbage."""

    def __init__(self, inner: BlobStore, ring: KeyRing | None) -> None:
        self.inner = inner
        self.ring = ring

    async def put(self, key: str, data: bytes) -> None:
        if self.ring is not None:
            data = await asyncio.to_thread(self.ring.seal, data)
        await self.inner.put(key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(open_bytes, self.ring, await self.inner.get(key))

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def ping(self) -> float:
        return await self.inner.ping()

    async def reseal(self, key: str) -> bool:
        """Seal the blob under `key` with the current key (for rotation); whether it
        needed it. Written whole under the same key, so readers see old or new."""
        stored = await self.inner.get(key)
        if self.ring is None or self.ring.is_current(stored):
            return False
        await self.put(key, await asyncio.to_thread(open_bytes, self.ring, stored))
        return True


def blob_store(settings: Settings, store_settings: DocStoreSettings) -> BlobStore:
    """The configured blob store, encrypting when a key ring is set."""
    return SealedBlobStore(_plain_store(settings, store_settings), settings.data_ring)


def _plain_store(settings: Settings, store_settings: DocStoreSettings) -> BlobStore:
    url = store_settings.blob_url
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        args = {"endpoint_url": store_settings.s3_endpoint_url or None,
                "region_name": store_settings.s3_region or None}
        return S3BlobStore(bucket, prefix, **{k: v for k, v in args.items() if v})
    if url.startswith("file://"):
        return FileBlobStore(Path(url.removeprefix("file://")))
    if url:
        raise ValueError(f"LLMDOCS_DOCSTORE_BLOB_URL must be file:// or s3://, not {url!r}")
    return FileBlobStore(settings.data_dir / "blobs")
