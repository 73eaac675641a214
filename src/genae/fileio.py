"""Durable file writes and genae's cache root, shared by runs, caches and downloads.

``atomic_write`` replaces a file so that a crash or a full disk leaves the old file or the new
one, never a part: the bytes go to a temporary file with a name unique to the process
(``NAME.tmp-<pid>-<random>``, so two writers never interleave), are fsync'ed, and the temporary
file is renamed over the target (then the directory is fsync'ed). On failure the temporary file is
removed and the error re-raised.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write", "cache_root", "fsync_dir", "sha256_file", "write_synced"]


def cache_root() -> Path:
    """``$GENAE_CACHE`` or ``~/.cache/genae``: datasets (``data/``), the domain classifier
    (``domain/``), real-data statistics and the Inception weights (``weights/``)."""
    env = os.environ.get("GENAE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genae"


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """fsync a directory (so a rename in it is durable); a no-op where the filesystem refuses."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
