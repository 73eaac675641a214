"""Every file genae writes: durable, inside the folder it belongs to, never through a link.

Run directories (and a sweep's folder) are written only through this module. With ``root`` (the
run directory) given, each function guarantees:

- **Inside.** Nothing below ``root`` is followed: every folder between ``root`` and the file must
  be a real folder (a symbolic link there is refused with a ``GenaeError`` naming it, before
  anything is written), and missing ones are created as real folders. ``root`` itself may be a
  link: where a run lives is the user's choice, what is inside it is genae's.
- **Never through the last link either.** ``atomic_write`` *replaces* whatever entry has the name
  (a link included: the rename swaps the directory entry, the link's target is untouched);
  ``open_append`` and ``read_own`` open with ``O_NOFOLLOW`` and accept only a regular file of a
  single link (an append to a hard-linked file would change the other name's data too).
- **Whole or old.** ``atomic_write`` writes a temporary file of a name unique to the process
  (``NAME.tmp-<pid>-<random>``, created exclusively, so two writers never interleave and a
  planted link at that name is never followed), fsyncs it, renames it over the target and fsyncs
  the folder: a crash, a kill or a full disk leaves the old file or the new one, never a part,
  and never a temporary file (it is removed on failure). ``append`` writes one record in one go
  and, if the write fails part-way (``File too large``, a full disk), cuts the file back to its
  old length: no half record is left for the next one to be glued to.
- **Named.** Every ``OSError`` leaving this module names the file it was about (``e.filename``),
  the target rather than a temporary name: ``File too large (RUN/metrics.jsonl)``.

Without ``root`` (caches, downloads) the same writes are made, without the folder checks.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import GenaeError

__all__ = ["append", "atomic_write", "cache_root", "fsync_dir", "is_own", "link_refused", "make_dirs",
           "open_append", "open_own", "read_own", "refuse_links", "remove", "sha256_file", "write_synced"]

# O_NONBLOCK (in _READ and open_own): opening a FIFO planted at a file's name fails or returns at
# once instead of hanging; it changes nothing for regular files.
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def cache_root() -> Path:
    """``$GENAE_CACHE`` or ``~/.cache/genae``: datasets (``data/``), the domain classifier
    (``domain/``), real-data statistics and the Inception weights (``weights/``)."""
    env = os.environ.get("GENAE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genae"


# --------------------------------------------------------------------------------------------
# Errors that name their file
# --------------------------------------------------------------------------------------------
def _named(e: OSError, path: Path) -> OSError:
    """``e`` as an ``OSError`` of the same errno naming ``path`` (a failed ``write`` names no file,
    a failed rename names the temporary one)."""
    return OSError(e.errno, e.strerror or str(e), str(path))


def link_refused(path: Path) -> GenaeError:
    """The one-line error for a symbolic link where genae writes, naming the link and its target."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return GenaeError(f"{path} is a symbolic link (to {target}); genae writes a run's files only inside the "
                      "run, never through a link: nothing was written through it; remove the link (put the "
                      "real file or folder in its place to keep it) and retry")


def _not_own_file(path: Path, st: os.stat_result) -> GenaeError | None:
    """Why an opened ``path`` is not a file genae may write in place (None when it is)."""
    if not stat.S_ISREG(st.st_mode):
        return GenaeError(f"{path} is not a regular file; genae writes only regular files in a run: "
                          "move it away and retry")
    if st.st_nlink > 1:
        return GenaeError(f"{path} has {st.st_nlink} names (hard links); writing into it would change the "
                          "other names' data too: replace it by a copy (cp --remove-destination) and retry")
    return None


# --------------------------------------------------------------------------------------------
# Folders below a root: real folders only
# --------------------------------------------------------------------------------------------
def _parts_below(root: Path, path: Path) -> tuple[str, ...]:
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        raise GenaeError(f"{path} is not inside {root}; genae writes there only") from None
    if ".." in parts:
        raise GenaeError(f"{path} leaves {root} (..); genae writes only inside it")
    return parts


def make_dirs(root: str | os.PathLike, folder: str | os.PathLike, create: bool = True) -> Path:
    """``folder`` (at or below ``root``), each level below ``root`` a real folder: a missing one is
    created (when ``create``), a link or a file is refused with a ``GenaeError`` naming it.
    Nothing outside ``root`` is created or followed."""
    root, folder = Path(root), Path(folder)
    here = root
    for part in _parts_below(root, folder):
        here = here / part
        if create:
            try:
                os.mkdir(here)
            except FileExistsError:
                pass
            except OSError as e:
                raise _named(e, here) from None
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            if create:
                raise
            return folder  # nothing there yet: nothing to follow
        if stat.S_ISLNK(st.st_mode):
            raise link_refused(here)
        if not stat.S_ISDIR(st.st_mode):
            raise GenaeError(f"{here} is a file where genae keeps a folder; move it away and retry")
    return folder


def refuse_links(root: str | os.PathLike, names) -> None:
    """A ``GenaeError`` naming the first of ``root/name`` (for each of ``names``) that is a symbolic
    link, or a file of several names (hard links): a writer calls this before it starts, for what
    it writes in place (appends, folders it adds files to), so a link there stops it before any
    work rather than midway (``open_own`` would refuse it then)."""
    for name in names:
        path = Path(root) / name
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISLNK(st.st_mode):
            raise link_refused(path)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise _not_own_file(path, st)


# --------------------------------------------------------------------------------------------
# Whole files: atomically
# --------------------------------------------------------------------------------------------
def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` (created exclusively: an existing file or a link there
    is an error, never written through) and fsync it."""
    try:
        fd = os.open(path, _NEW, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _named(e, path) from None


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


def atomic_write(path: str | os.PathLike, data: bytes, root: str | os.PathLike | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring); with ``root``, its
    folders below ``root`` are created or checked first. The file is created ``0o666`` less the
    umask, as ``open`` would."""
    path = Path(path)
    if root is not None:
        make_dirs(root, path.parent)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise _named(e, path) from None
        raise
    fsync_dir(path.parent)


# --------------------------------------------------------------------------------------------
# Appends: one record at a time, all or nothing
# --------------------------------------------------------------------------------------------
def open_own(path: str | os.PathLike, flags: int, root: str | os.PathLike | None = None) -> int:
    """A file descriptor of ``path`` opened with ``flags`` (``os.O_*``; mode 0o666 less the umask
    when it creates), never through a link: a link, a non-regular file or a file of several names
    is refused with a ``GenaeError`` naming it. With ``root``, its folders below ``root`` are
    created or checked first."""
    path = Path(path)
    if root is not None:
        make_dirs(root, path.parent)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise link_refused(path) from None
        raise _named(e, path) from None
    why = _not_own_file(path, os.fstat(fd))
    if why is not None:
        os.close(fd)
        raise why
    return fd


def open_append(path: str | os.PathLike, root: str | os.PathLike | None = None) -> BinaryIO:
    """``path`` opened for appending (unbuffered bytes), created when missing (``open_own``)."""
    return os.fdopen(open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, root), "ab", buffering=0)


def append(path: str | os.PathLike, data: bytes, root: str | os.PathLike | None = None) -> None:
    """Append ``data`` to ``path`` (``open_append``) and fsync it; on any failure the file is cut
    back to its length before the call and the error names ``path``."""
    path = Path(path)
    with open_append(path, root) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException as e:
            with contextlib.suppress(OSError):  # a half record would be glued to the next one
                os.ftruncate(fd, size)
            if isinstance(e, OSError):
                raise _named(e, path) from None
            raise


# --------------------------------------------------------------------------------------------
# Reading and deleting below a root
# --------------------------------------------------------------------------------------------
def is_own(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file of ``root``'s own: no link at it or among its folders
    below ``root`` (what ``read_own`` would read)."""
    root, path = Path(root), Path(path)
    try:
        make_dirs(root, path.parent, create=False)
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (GenaeError, OSError):
        return False


def read_own(root: str | os.PathLike, path: str | os.PathLike) -> bytes | None:
    """The bytes of ``path`` when it is a regular file of ``root``'s own (no link at or above it
    below ``root``), else None: what a report may embed. Other read errors name ``path``."""
    root, path = Path(root), Path(path)
    try:
        make_dirs(root, path.parent, create=False)
    except GenaeError:
        return None
    try:
        fd = os.open(path, _READ)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.ENXIO):
            return None
        raise _named(e, path) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def remove(root: str | os.PathLike, path: str | os.PathLike, ignore_errors: bool = False) -> None:
    """Delete ``path`` below ``root``: a link is removed itself (never followed), a folder with
    everything in it (``shutil.rmtree`` removes the links inside, not what they point to), a
    missing path is no error. A link among the folders between ``root`` and ``path`` is refused
    (``GenaeError``) whatever ``ignore_errors`` says; other errors are ignored when it is true."""
    root, path = Path(root), Path(path)
    if not _parts_below(root, path):
        raise GenaeError(f"refusing to delete {root} itself")
    make_dirs(root, path.parent, create=False)
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if not ignore_errors:
            raise (e if e.filename else _named(e, path)) from None


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
