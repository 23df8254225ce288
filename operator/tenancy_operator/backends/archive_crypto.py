"""Envelope encryption of archive files: a random data key per archive, AES-256-GCM, chunked.

Each archive gets a fresh 32-byte data key. Files are encrypted in chunks of `CHUNK` bytes; each
chunk is `length (4 bytes, big-endian) | nonce (12) | ciphertext+tag`, and its associated data binds
the archive id, the file name, the chunk's index and whether it is the last chunk, so chunks cannot
be reordered, moved between files or archives, or cut off at the end without the tag failing. The
data key itself never touches disk in clear: OpenBao transit (the tenant's key) wraps it and the
manifest holds only the wrapped form (see backends/vault_export.py). The manifest is authenticated
with an HMAC under the same data key, so a checksum in it cannot be edited to match a changed file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CHUNK", "CIPHER", "new_data_key", "encrypt_file", "decrypt_file", "decrypt_bytes", "sha256_file",
           "manifest_mac", "check_manifest_mac", "Tampered"]

CHUNK = 1 << 20
CIPHER = "AES-256-GCM"
_HEADER = struct.Struct(">I")


class Tampered(Exception):
    """A file or the manifest does not match what was written; `file` names it."""

    def __init__(self, file: str, why: str) -> None:
        super().__init__(f"{file}: {why}")
        self.file = file


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(archive_id: str, name: str, index: int, last: bool) -> bytes:
    return f"tenancy-archive|{archive_id}|{name}|{index}|{int(last)}".encode()


def encrypt_file(src: BinaryIO, dst: BinaryIO, key: bytes, archive_id: str, name: str) -> int:
    """Encrypts `src` into `dst`; returns the plaintext byte count. An empty file is one empty last chunk."""
    aes = AESGCM(key)
    total, index = 0, 0
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK) if chunk else b""
        last = not following
        nonce = os.urandom(12)
        sealed = aes.encrypt(nonce, chunk, _aad(archive_id, name, index, last))
        dst.write(_HEADER.pack(len(sealed)) + nonce + sealed)
        total += len(chunk)
        if last:
            return total
        chunk, index = following, index + 1


def decrypt_file(src: BinaryIO, dst: BinaryIO, key: bytes, archive_id: str, name: str,
                 on_bytes: Callable[[int], None] | None = None) -> int:
    """Decrypts what `encrypt_file` wrote; raises Tampered on any change, truncation or wrong key.
    `on_bytes` is told each chunk's plain size as it is written (progress)."""
    aes = AESGCM(key)
    total, index = 0, 0
    while True:
        header = src.read(_HEADER.size)
        if len(header) != _HEADER.size:
            raise Tampered(name, "ends before its last chunk (truncated)")
        (length,) = _HEADER.unpack(header)
        nonce, sealed = src.read(12), src.read(length)
        if len(nonce) != 12 or len(sealed) != length:
            raise Tampered(name, "ends inside a chunk (truncated)")
        last = src.peek(1)[:1] == b"" if hasattr(src, "peek") else _at_end(src)
        try:
            plain = aes.decrypt(nonce, sealed, _aad(archive_id, name, index, last))
        except InvalidTag:
            raise Tampered(name, f"chunk {index} fails authentication (changed, or another key)") from None
        dst.write(plain)
        total += len(plain)
        if on_bytes is not None:
            on_bytes(len(plain))
        if last:
            return total
        index += 1


def _at_end(src: BinaryIO) -> bool:
    here = src.tell()
    more = src.read(1)
    src.seek(here)
    return more == b""


def decrypt_bytes(data: bytes, key: bytes, archive_id: str, name: str) -> bytes:
    import io

    out = io.BytesIO()
    decrypt_file(io.BufferedReader(io.BytesIO(data)), out, key, archive_id, name)
    return out.getvalue()


def sha256_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "manifestMac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def manifest_mac(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


def check_manifest_mac(manifest: dict[str, Any], key: bytes) -> None:
    if not hmac.compare_digest(str(manifest.get("manifestMac", "")), manifest_mac(manifest, key)):
        raise Tampered("manifest.json", "its authentication code does not match (the manifest was edited)")
