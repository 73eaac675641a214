"""Issue 42's attack matrix, rerun against real (tiny) runs: attempts, held, failed, by category.

Every attack of the issue's list runs as its own child process (``python -m genae ...`` for the
command line, ``python -c`` for the Python API) on a copy of one tiny run trained once, and is
judged on what the issue asks of it:

- the files outside the run stay byte-identical (SHA-256 of a folder tree, links not followed);
- a refusal exits non-zero with a short message on stderr (at most 3 lines, the last one under
  500 characters) and no ``Traceback``; where the issue says so, no directory or file is created;
- the metric history keeps its rows; no code runs from any file (a marker file stays absent);
- the YAML bombs fail in under 5 s in a child limited to 2 GB of address space (RLIMIT_AS).

The categories are the issue's bullets ("outside data", "metric history", "silent wrong
results", "denial of service", "raw tracebacks") and "held" (what held before and stays held).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/attack_matrix.py --out runs/attack-matrix

Writes OUT/matrix.md (the table by category, the failures with a one-line reason and every
attempt) and OUT/matrix.json; prints the table. Exit status 1 when any attack failed. About
3.5 minutes on one core (two tiny training runs and a one-point sweep, then ~60 short children).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CATEGORIES = ["outside data", "metric history", "silent wrong results", "denial of service",
              "raw tracebacks", "held"]
SECRET = b"outside the run: must stay exactly as it is\n"
TOKEN = b"token-0123456789"
NL = b"\n"

TINY = ["model.latent_dim=4", "model.hidden=32"]
GAN = ["model.latent_dim=4", "model.hidden=8", "model.depth=1"]
FAST = ["train.steps=4", "train.batch_size=16", "train.log_every=1", "train.sample_every=4",
        "train.ckpt_every=2", "train.progress=False", "train.tensorboard=False", "train.device='cpu'",
        "train.threads=1"]
BOMB_SECONDS, BOMB_AS_BYTES = 5.0, 2 * 2 ** 30


class Fail(Exception):
    """The attack was not held: the reason, one line."""


def sets(items):
    return [a for item in items for a in ("--set", item)]


def bomb_yaml(levels: int = 9) -> str:
    """A "billion laughs" document: under 1 KB of text, 9**levels strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` × ``height`` pixels (holding none): a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def small_png(width: int = 28, height: int = 28) -> bytes:
    """A real grey 8-bit PNG (a mid-grey square)."""
    raw = b"".join(b"\0" + bytes([128]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tree(path: Path) -> dict[str, str]:
    """Every entry below ``path`` (and ``path`` itself), links not followed: a file's SHA-256, a
    link's target, or ``dir``."""
    out = {}
    for p in [path, *sorted(path.rglob("*"))] if path.is_dir() and not path.is_symlink() else [path]:
        key = str(p.relative_to(path)) if p != path else "."
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[key] = "dir"
        else:
            out[key] = "missing" if not p.exists() else "other"
    return out


def same_tree(before: dict, path: Path, what: str) -> None:
    after = tree(path)
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        raise Fail(f"{what} changed: {', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''}")


def rewrite_checkpoint_file(ckpt: Path, name: str, data: bytes) -> None:
    """Replace ``name`` in a checkpoint and its manifest entry (a crafted checkpoint: the manifest
    check passes, so the file itself is what gets read)."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "manifest.json").write_text(json.dumps(manifest))


class _Evil:
    """Pickles to ``os.system("touch MARKER")``: runs a command when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Proc:
    def __init__(self, returncode, stdout, stderr, wall):
        self.returncode, self.stdout, self.stderr, self.wall = returncode, stdout, stderr, wall

    def last(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def clip(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
def no_traceback(p: Proc) -> None:
    if "Traceback" in p.stderr:
        raise Fail(f"traceback (exit {p.returncode}): {clip(p.last())}")


def short_error(p: Proc, needle: str | None = None) -> None:
    """Exit non-zero, no traceback, a short message (<= 3 lines, the last < 500 characters)."""
    no_traceback(p)
    if p.returncode == 0:
        raise Fail(f"exit 0 where it must fail; stderr: {clip(p.last()) or '(empty)'}")
    if p.returncode < 0:
        raise Fail(f"killed by signal {-p.returncode}: {clip(p.last())}")
    lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
    if not lines:
        raise Fail(f"exit {p.returncode} with nothing on stderr")
    if len(lines) > 3 or len(lines[-1]) >= 500:
        raise Fail(f"error not short: {len(lines)} lines, last {len(lines[-1])} chars: {clip(lines[-1])}")
    if needle is not None and needle not in p.stderr:
        raise Fail(f"error does not say {needle!r}: {clip(p.last())}")


def ok_or_short_error(p: Proc) -> None:
    """Either the command went on (exit 0) or it refused in a short message; never a traceback."""
    no_traceback(p)
    if p.returncode != 0:
        short_error(p)


def api_refused(p: Proc, needle: str | None = None) -> None:
    """An API child (``PRELUDE``'s ``refused``): exit 3 means a ``GenaeError`` was raised."""
    if p.returncode == 0:
        raise Fail("accepted: " + clip(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "no error"))
    if p.returncode != 3:
        raise Fail(f"not a GenaeError (exit {p.returncode}): {clip(p.last())}")
    if needle is not None and needle not in p.stderr:
        raise Fail(f"error does not say {needle!r}: {clip(p.last())}")


def absent(path: Path, what: str = "") -> None:
    if os.path.lexists(path):
        raise Fail(f"{what or path.name} was created")


PRELUDE = textwrap.dedent("""\
    import os, sys, json, signal, time
    from pathlib import Path
    import numpy as np
    import torch
    torch.set_num_threads(1)
    import genae
    from genae.errors import GenaeError
    TRAIN = dict(batch_size=8, progress=False, tensorboard=False, device="cpu", log_every=1,
                 ckpt_every=1000, threads=1)
    def refused(fn):
        try:
            fn()
        except GenaeError as e:
            print("REFUSED:", type(e).__name__ + ":", " | ".join(str(e).splitlines())[:400], file=sys.stderr)
            sys.exit(3)
        print("ACCEPTED: no error raised", file=sys.stderr)
        sys.exit(0)
    """)


# --------------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------------
class Matrix:
    def __init__(self, work: Path):
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GENAE_")}
        self.env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GENAE_CACHE=str(work / "cache"),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
                        PYTHONWARNINGS="ignore")
        self.results: list[dict] = []
        self.n = 0

    # children ------------------------------------------------------------------------------
    def _run(self, argv, *, env=None, preexec_fn=None, timeout=180) -> Proc:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", cwd=self.work,
                                  env={**self.env, **(env or {})}, preexec_fn=preexec_fn, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise Fail(f"still running after {timeout} s") from e
        return Proc(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)

    def cli(self, *args, **kw) -> Proc:
        return self._run([sys.executable, "-m", "genae", *map(str, args)], **kw)

    def api(self, code: str, **kw) -> Proc:
        return self._run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], **kw)

    # fixtures ------------------------------------------------------------------------------
    def box(self) -> Path:
        self.n += 1
        d = self.work / f"a{self.n:02d}"
        d.mkdir()
        return d

    def run_copy(self, box: Path, name: str = "run", source: Path | None = None) -> Path:
        return Path(shutil.copytree(source or self.base, box / name, symlinks=True))

    def outside(self, box: Path) -> Path:
        """Someone else's folder: ``precious`` (the secret) and ``sub/notes.txt``."""
        folder = box / "outside"
        (folder / "sub").mkdir(parents=True)
        (folder / "precious").write_bytes(SECRET + TOKEN)
        (folder / "sub" / "notes.txt").write_bytes(SECRET * 3)
        return folder

    def setup(self) -> None:
        t0 = time.perf_counter()
        (self.work / "setup").mkdir()
        self.base = self.work / "setup" / "run"
        p = self.cli("train", "vae", "--data", "fake", *sets(TINY + FAST), "--out", self.base, timeout=300)
        if p.returncode != 0:
            raise SystemExit(f"setup: the tiny run failed to train (exit {p.returncode}):\n{p.stderr[-2000:]}")
        (self.base / "eval.json").write_text(json.dumps({
            "run": str(self.base), "method": "vae", "data": "fake", "step": 4, "metrics": {
                "recon-mse": {"value": 0.1, "sse_per_example": 78.4, "n": 64, "split": "test", "step": 4}}}))
        # genae manifold needs a method with generator manifolds (a VAE has none): a tiny DCGAN
        self.gan = self.work / "setup" / "gan"
        p = self.cli("train", "dcgan", "--data", "fake", *sets(GAN + FAST), "--out", self.gan, timeout=300)
        if p.returncode != 0:
            raise SystemExit(f"setup: the tiny DCGAN failed to train (exit {p.returncode}):\n{p.stderr[-2000:]}")
        self.sweep = self.work / "setup" / "sweep"
        p = self.cli("sweep", "vae", "--data", "fake", *sets(TINY + FAST), "--seeds", "0", "--jobs", "1",
                     "--threads", "1", "--out", self.sweep, timeout=300)
        if p.returncode != 0:
            raise SystemExit(f"setup: the one-point sweep failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
        self.image = self.work / "setup" / "digit.png"
        self.image.write_bytes(small_png())
        self.setup_s = time.perf_counter() - t0

    # recording -----------------------------------------------------------------------------
    def attack(self, category: str, name: str, fn) -> None:
        assert category in CATEGORIES, category
        t0 = time.perf_counter()
        try:
            fn(self.box())
            held, reason = True, ""
        except Fail as e:
            held, reason = False, str(e)
        except Exception as e:  # the harness's own error: counted as failed, named as such
            held, reason = False, f"script error: {type(e).__name__}: {clip(str(e))}"
        seconds = time.perf_counter() - t0
        self.results.append(dict(category=category, attack=name, held=held, reason=reason, seconds=seconds))
        print(f"  {'held  ' if held else 'FAILED'} {seconds:5.1f}s  [{category}] {name}"
              + (f"\n          -> {reason}" if reason else ""), flush=True)


# --------------------------------------------------------------------------------------------
# The attacks
# --------------------------------------------------------------------------------------------
def outside_data(m: Matrix) -> None:
    cat = "outside data"

    def linked_for_resume(entry):
        def attack(box):
            run, outside = m.run_copy(box), m.outside(box)
            (run / entry).unlink(missing_ok=True)
            (run / entry).symlink_to(outside / "precious")
            before = tree(outside)
            p = m.cli("resume", run, "--steps", 6)
            same_tree(before, outside, "the outside folder")
            ok_or_short_error(p)
        return attack

    for entry in (".lock", "metrics.jsonl", "loss_curves.png"):
        m.attack(cat, f"resume with {entry} a symlink to an outside file", linked_for_resume(entry))

    def hard_linked_metrics(box):
        run, outside = m.run_copy(box), m.outside(box)
        (run / "metrics.jsonl").unlink()
        os.link(outside / "precious", run / "metrics.jsonl")
        before = tree(outside)
        p = m.cli("resume", run, "--steps", 6)
        same_tree(before, outside, "the outside folder")
        ok_or_short_error(p)
    m.attack(cat, "resume with metrics.jsonl hard-linked to an outside file", hard_linked_metrics)

    def report_embeds(box):
        import base64

        run, outside = m.run_copy(box), m.outside(box)
        (run / "loss_curves.png").unlink(missing_ok=True)
        (run / "loss_curves.png").symlink_to(outside / "precious")
        (run / "samples" / "samples_99999999.png").symlink_to(outside / "precious")
        (outside / "eval.json").write_text(json.dumps({"step": 4, "metrics": {"leaked-metric": {"value": 1.0}}}))
        (run / "eval.json").unlink()
        (run / "eval.json").symlink_to(outside / "eval.json")
        (outside / "config.yaml").write_bytes((run / "config.yaml").read_bytes() + b"# " + TOKEN + b"\n")
        (run / "config.yaml").unlink()
        (run / "config.yaml").symlink_to(outside / "config.yaml")
        before = tree(outside)
        p = m.cli("report", run)
        same_tree(before, outside, "the outside folder")
        no_traceback(p)
        report = run / "report.html"
        if report.is_file() and not report.is_symlink():
            text = report.read_bytes()
            secret = base64.b64encode(SECRET + TOKEN)
            if secret in text or TOKEN in text or b"leaked-metric" in text:
                raise Fail("report.html embeds an outside file's contents")
        elif p.returncode == 0:
            raise Fail("report exited 0 but wrote no report.html")
    m.attack(cat, "report with loss_curves.png, a sample grid, eval.json, config.yaml symlinked outside",
             report_embeds)

    def train_out_linked_lock(box):
        outside = m.outside(box)
        out = box / "d"
        out.mkdir()
        (out / ".lock").symlink_to(outside / "precious")
        before = tree(outside)
        p = m.cli("train", "vae", "--data", "fake", *sets(TINY + FAST), "--out", out)
        same_tree(before, outside, "the outside folder")
        short_error(p)
        if sorted(x.name for x in out.iterdir()) != [".lock"]:
            raise Fail(f"--out DIR gained files: {sorted(x.name for x in out.iterdir())}")
    m.attack(cat, "train --out DIR where DIR holds only a .lock symlink", train_out_linked_lock)

    def sweep_linked_point(box):
        sweep = Path(shutil.copytree(m.sweep, box / "sweep", symlinks=True))
        outside = m.outside(box)
        point = sweep / json.loads((sweep / "manifest.json").read_text())["points"][0]["run"]
        shutil.rmtree(point)
        point.symlink_to(outside)
        before = tree(outside)
        p = m.cli("sweep", "--resume", sweep)
        same_tree(before, outside, "the outside folder")
        no_traceback(p)
        if not point.is_symlink():
            raise Fail("the point's link was replaced by a run (the sweep acted on it)")
    m.attack(cat, "sweep rerun with runs/<point> a symlink to an outside folder", sweep_linked_point)

    def checkpoints_into_other_run(box):
        run, other = m.run_copy(box), m.run_copy(box, "other")
        (other / "checkpoints" / ".tmp-step-00000006-1").mkdir()  # a leftover a cleanup would remove
        shutil.rmtree(run / "checkpoints")
        (run / "checkpoints").symlink_to(other / "checkpoints")
        before = tree(other)
        p = m.cli("resume", run, "--steps", 8)
        same_tree(before, other, "the other run")
        ok_or_short_error(p)
    m.attack(cat, "checkpoints a symlink into another run, resume (pruning) to step 8",
             checkpoints_into_other_run)


def metric_history(m: Matrix) -> None:
    cat = "metric history"

    def rewind(run: Path) -> None:  # resume from step 2 with rows 3, 4 logged after it (they must go)
        shutil.rmtree(run / "checkpoints" / "step-00000004")

    def fsize(rewrite: bool):
        def attack(box):
            run = m.run_copy(box)
            rows = [json.dumps({"step": 1, "vae/loss": 0.5, "pad": "x" * 80}) for _ in range(3000)]
            tail = []
            if rewrite:
                tail = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)[1:]
                rewind(run)
            (run / "metrics.jsonl").write_bytes("\n".join(rows).encode() + b"\n" + b"".join(tail))
            before = (run / "metrics.jsonl").read_bytes()
            limit = len(before) // 3

            def limited():
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

            p = m.cli("resume", run, *([] if rewrite else ["--steps", 6]), preexec_fn=limited)
            if (run / "metrics.jsonl").read_bytes() != before:
                n0, n1 = before.count(NL), (run / "metrics.jsonl").read_bytes().count(NL)
                raise Fail(f"metrics.jsonl changed under the size limit: {n0} -> {n1} lines")
            short_error(p, "metrics.jsonl")
            left = [x.name for x in run.glob("*.tmp-*")]
            if left:
                raise Fail(f"temporary files left: {left}")
        return attack

    m.attack(cat, "RLIMIT_FSIZE below metrics.jsonl, resume that must drop rows (rewrite)", fsize(True))
    m.attack(cat, "RLIMIT_FSIZE below metrics.jsonl, resume that only appends", fsize(False))

    def killed_mid_rewrite(box):
        run = m.run_copy(box)
        rewind(run)
        before = (run / "metrics.jsonl").read_bytes()
        p = m.api(f"""
            from genae import fileio
            from genae.training import resume
            real = fileio.write_synced
            def killed(path, data):
                if "metrics" in str(path):
                    real(path, data[: len(data) // 2])
                    print("KILLED while writing", path, file=sys.stderr, flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(path, data)
            fileio.write_synced = killed
            resume({str(run)!r})
            """)
        if "KILLED" not in p.stderr:
            raise Fail(f"the metrics rewrite never went through fileio.write_synced (exit {p.returncode}): "
                       f"{clip(p.last())}")
        if (run / "metrics.jsonl").read_bytes() != before:
            n0, n1 = before.count(NL), (run / "metrics.jsonl").read_bytes().count(NL)
            raise Fail(f"SIGKILL mid-rewrite: metrics.jsonl {n0} -> {n1} lines")
        p = m.cli("resume", run)
        no_traceback(p)
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        if p.returncode != 0 or steps != [1, 2, 3, 4]:
            raise Fail(f"the resume after the kill: exit {p.returncode}, rows {steps}")
    m.attack(cat, "SIGKILL halfway through the metrics.jsonl rewrite on resume, then resume",
             killed_mid_rewrite)

    def malformed_row(box):
        run = m.run_copy(box)
        lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        rewind(run)
        damaged = [lines[0], b"not json {\n", b"[1, 2]\n", lines[1], lines[2], lines[3]]
        (run / "metrics.jsonl").write_bytes(b"".join(damaged))
        p = m.cli("resume", run)
        no_traceback(p)
        after = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        if after[:4] != damaged[:4]:
            raise Fail(f"rows up to the checkpoint not kept: {len(after)} lines now")
        if p.returncode != 0:
            raise Fail(f"resume refused (exit {p.returncode}) rather than naming the line: {clip(p.last())}")
        if "metrics.jsonl" not in p.stderr:
            raise Fail("the malformed lines were not named on stderr")
    m.attack(cat, "malformed rows in metrics.jsonl, then resume", malformed_row)


def silent_wrong(m: Matrix) -> None:
    cat = "silent wrong results"

    def train_nan(expr, label):
        def attack(box):
            out = box / "r"
            p = m.api(f"""
                x = {expr}
                refused(lambda: genae.train("vae", data=x, steps=2, out={str(out)!r}, train=TRAIN))
                """)
            api_refused(p, "NaN")
            absent(out, "the run directory")
        m.attack(cat, f"genae.train('vae', data={label})", attack)

    train_nan("torch.rand(16, 1, 8, 8); x[3, 0, 2, 2] = float('nan')", "images with one NaN pixel")
    train_nan("torch.full((16, 1, 8, 8), float('nan'))", "all-NaN images")
    train_nan("torch.rand(16, 1, 8, 8).index_fill_(0, torch.tensor([5]), float('inf'))", "an inf image")

    def eval_nan(target):
        def attack(box):
            p = m.api(f"""
                x = torch.rand(20, 1, 28, 28); x[0] = float("nan")
                target = {"genae.load_run(%r)" % str(m.base) if target == "method" else repr(str(m.base))}
                refused(lambda: genae.evaluate(target, ["recon-mse"], data=x))
                """)
            api_refused(p, "NaN")
        m.attack(cat, f"genae.evaluate({target}, data=NaN images)", attack)

    eval_nan("method")
    eval_nan("run")


def denial_of_service(m: Matrix) -> None:
    cat = "denial of service"

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (BOMB_AS_BYTES, BOMB_AS_BYTES))

    def bounded(p: Proc):
        if "MemoryError" in p.stderr:
            raise Fail(f"MemoryError under the {BOMB_AS_BYTES >> 30} GB limit ({p.wall:.1f} s)")
        short_error(p)
        if p.wall >= BOMB_SECONDS:
            raise Fail(f"refused, but after {p.wall:.1f} s (limit {BOMB_SECONDS:.0f} s)")

    def in_run(command):
        def attack(box):
            run = m.run_copy(box)
            cfg = (run / "config.yaml").read_text()
            (run / "config.yaml").write_text(bomb_yaml() + cfg.replace("method: vae", "method: *a8"))
            args = {"report": ["report", run], "sample": ["sample", run, "--out", box / "s.png"],
                    "resume": ["resume", run], "compare": ["compare", run]}[command]
            p = m.cli(*args, preexec_fn=limited, timeout=60)
            bounded(p)
            absent(run / "report.html")
            absent(box / "s.png")
        return attack

    for command in ("report", "resume", "compare"):
        m.attack(cat, f"billion-laughs config.yaml in a run: genae {command}", in_run(command))

    def as_config(command: str, tail: str, made: str):
        def attack(box):
            bomb = box / "bomb.yaml"
            bomb.write_text(bomb_yaml() + tail)
            p = m.cli(command, "--config", bomb, "--data", "fake", "--out", box / "x", preexec_fn=limited, timeout=60)
            bounded(p)
            absent(box / "x", made)
        return attack
    m.attack(cat, "billion-laughs YAML as train --config",
             as_config("train", "method: vae\nmodel: {hidden: *a8}\n", "the run directory"))
    m.attack(cat, "billion-laughs YAML as sweep --config",
             as_config("sweep", "method: vae\nset: *a8\n", "the sweep directory"))


def raw_tracebacks(m: Matrix) -> None:
    import yaml

    cat = "raw tracebacks"

    def trainer_json(box):
        run = m.run_copy(box)
        ckpt = sorted((run / "checkpoints").glob("step-*"))[-1]
        state = json.loads((ckpt / "trainer.json").read_text())
        rewrite_checkpoint_file(ckpt, "trainer.json", json.dumps({**state, "step": "4"}).encode())
        config = (run / "config.yaml").read_bytes()
        p = m.cli("resume", run, "--steps", 6)
        short_error(p, "trainer.json")
        if (run / "config.yaml").read_bytes() != config:
            raise Fail("config.yaml rewritten before the refusal")
    m.attack(cat, "trainer.json with step: \"4\" (manifest matching), resume --steps 6", trainer_json)

    def config_method_list(box):
        run = m.run_copy(box)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "method": ["vae", "ae"]}))
        p = m.cli("resume", run)
        short_error(p, "config.yaml")
    m.attack(cat, "config.yaml with method: [vae, ae], resume", config_method_list)

    def given_method_list(box):
        given = box / "given.yaml"
        given.write_text("method: [vae, ae]\n")
        p = m.cli("train", "--config", given, "--data", "fake", "--out", box / "x")
        short_error(p)
        absent(box / "x", "the run directory")
    m.attack(cat, "train --config with method: [vae, ae]", given_method_list)

    def informational(name, content, command):
        def attack(box):
            run = m.run_copy(box)
            (run / name).write_text(json.dumps(content))
            p = m.cli(*command(run))
            no_traceback(p)
            if p.returncode != 0:
                short_error(p, name)
            if p.returncode == 0 and name not in p.stdout + p.stderr + (
                    (run / "report.html").read_text(errors="replace") if command(run)[0] == "report" else ""):
                raise Fail(f"the damaged {name} went unnamed")
        return attack

    m.attack(cat, "data.json with train.files a list, resume (finished run)",
             informational("data.json", {"train": {"files": ["a", "b"]}}, lambda r: ["resume", r]))
    m.attack(cat, "run.json with parameters.vae: 'many', report",
             informational("run.json", {"method": "vae", "parameters": {"vae": "many"}}, lambda r: ["report", r]))
    m.attack(cat, "eval.json with metrics a list, compare",
             informational("eval.json", {"step": 4, "metrics": [1, 2]}, lambda r: ["compare", r]))
    m.attack(cat, "eval.json with metrics a list, report",
             informational("eval.json", {"step": 4, "metrics": [1, 2]}, lambda r: ["report", r]))

    def sweep_manifest(field, value, needle):
        def attack(box):
            sweep = Path(shutil.copytree(m.sweep, box / "sweep", symlinks=True))
            manifest = json.loads((sweep / "manifest.json").read_text())
            manifest[field] = value
            (sweep / "manifest.json").write_text(json.dumps(manifest))
            p = m.cli("sweep", "--resume", sweep)
            short_error(p, needle)
        return attack

    m.attack(cat, "sweep manifest with points: 'all', sweep --resume", sweep_manifest("points", "all", "points"))
    m.attack(cat, "sweep manifest with seeds: 'zero', sweep --resume", sweep_manifest("seeds", "zero", "seeds"))

    def sweep_file(box):
        f = box / "sweep.yaml"
        f.write_text("method: vae\njobs: many\n")
        p = m.cli("sweep", "--config", f, "--data", "fake", "--out", box / "sw")
        short_error(p, "jobs")
        absent(box / "sw", "the sweep directory")
    m.attack(cat, "sweep --config with jobs: many", sweep_file)

    def betas(box):
        p = m.cli("train", "vae", "--data", "fake", "--set", "model.betas=(0.5,2.0)", "--out", box / "r")
        short_error(p, "betas")
        absent(box / "r", "the run directory")
    m.attack(cat, "train --set model.betas=(0.5,2.0) (no run directory may appear)", betas)

    def bad_out(command, kind):
        def attack(box):
            run = m.run_copy(box, source=m.gan if command == "manifold" else None)
            extra = {"sample": ["--n", 4], "imagine": ["--n", 2, "--draws", 2],
                     "manifold": ["--image", m.image, "--steps", 2, "--restarts", 1]}[command]
            out = {"x.txt": box / "x.txt", "no extension": box / "noext", "a directory": box / "dir.png"}[kind]
            if kind == "a directory":
                out.mkdir()
            p = m.cli(command, run, "--out", out, *extra)
            short_error(p, "directory" if kind == "a directory" else ".png")
            if kind == "a directory":
                if list(out.iterdir()):
                    raise Fail(f"wrote into the directory: {[x.name for x in out.iterdir()]}")
            else:
                absent(out)
        return attack

    for command in ("sample", "imagine", "manifold"):
        for kind in ("x.txt", "no extension", "a directory"):
            m.attack(cat, f"{command} --out {kind}", bad_out(command, kind))

    def manifold_steps0(box):
        run = m.run_copy(box, source=m.gan)
        p = m.cli("manifold", run, "--image", m.image, "--out", box / "m.png", "--steps", 0)
        short_error(p, "--steps")
        absent(box / "m.png")
    m.attack(cat, "manifold --steps 0", manifold_steps0)

    def huge_image(command):
        def attack(box):
            run = m.run_copy(box, source=m.gan if command == "manifold" else None)
            big = box / "big.png"
            big.write_bytes(png_header(20000, 20000))
            args = (["imagine", run, "--images", big] if command == "imagine"
                    else ["manifold", run, "--image", big, "--steps", 2, "--restarts", 1])
            p = m.cli(*args, "--out", box / "o.png", preexec_fn=lambda: resource.setrlimit(
                resource.RLIMIT_AS, (BOMB_AS_BYTES, BOMB_AS_BYTES)), timeout=60)
            short_error(p, "pixels")
            absent(box / "o.png")
        return attack

    m.attack(cat, "imagine --images a 20000x20000 PNG", huge_image("imagine"))
    m.attack(cat, "manifold --image a 20000x20000 PNG", huge_image("manifold"))

    def api_data(label, expr, needle):
        def attack(box):
            out = box / "r"
            p = m.api(f"""
                class Items(torch.utils.data.Dataset):
                    def __init__(self, items): self.items = items
                    def __len__(self): return len(self.items)
                    def __getitem__(self, i): return self.items[i]
                x = {expr}
                refused(lambda: genae.train("vae", data=x, steps=2, out={str(out)!r}, train=TRAIN))
                """)
            api_refused(p, needle)
            absent(out, "the run directory")
        m.attack(cat, f"genae.train(data={label})", attack)

    api_data("empty", "torch.empty(0, 1, 8, 8)", "no examples")
    api_data("[]", "[]", "no examples")
    api_data("an object array", "np.array([object(), object()])", "objects")
    api_data("a ragged list", "[[0.1, 0.2], [0.3]]", "ragged")
    api_data("a Dataset yielding dicts", "Items([{'image': torch.rand(1, 8, 8), 'label': 1}] * 4)", "dicts")

    def api_call(label, call, needle):
        def attack(box):
            p = m.api(f"""
                run = {str(m.base)!r}
                refused(lambda: {call})
                """)
            api_refused(p, needle)
        m.attack(cat, label, attack)

    api_call("genae.evaluate(run, n_samples=0)", "genae.evaluate(run, ['recon-mse'], n_samples=0)", "n_samples")
    api_call("genae.load_run(run, device='tpu')", "genae.load_run(run, device='tpu')", "tpu")
    api_call("genae.evaluate(method, data=32x32 images) for a 28x28 run",
             "genae.evaluate(genae.load_run(run), ['recon-mse'], data=torch.rand(10, 1, 32, 32))", "shape")

    def inception_pickle(via):
        def attack(box):
            marker = box / "pwned"
            weights = box / "weights.pth"
            weights.write_bytes(pickle.dumps({"conv.weight": _Evil(marker)}))
            env = {"GENAE_INCEPTION_WEIGHTS": str(weights)}
            if via == "api":
                p = m.api("""
                    from genae.metrics.inception import load_fid_inception
                    refused(lambda: load_fid_inception(download=False))
                    """, env=env)
                if marker.exists():
                    raise Fail("the pickle's payload ran")
                api_refused(p)
            else:
                run = m.run_copy(box)
                p = m.cli("eval", run, "--metrics", "fid", "--backbone", "inception", "--n-samples", 16, env=env,
                          timeout=120)
                if marker.exists():
                    raise Fail("the pickle's payload ran")
                short_error(p)
        return attack

    m.attack(cat, "GENAE_INCEPTION_WEIGHTS a pickle with a payload (load_fid_inception)", inception_pickle("api"))
    m.attack(cat, "GENAE_INCEPTION_WEIGHTS a pickle with a payload (genae eval --backbone inception)",
             inception_pickle("cli"))

    def compare_typo(box):
        p = m.cli("compare", m.base, "--metrics", "recon-mse.typo")
        short_error(p, "typo")
    m.attack(cat, "compare --metrics recon-mse.typo", compare_typo)

    def double_sigint(box):
        run = box / "run"
        p = m.api(f"""
            from genae import runs
            from genae.cli import main
            real, calls = runs.write_checkpoint, []
            def interrupted(run_dir, step, *args, **kw):
                calls.append(step)
                if len(calls) == 2:  # the step-4 checkpoint: half written when Ctrl-C comes twice
                    (Path(run_dir) / "checkpoints" / f".tmp-{{runs.checkpoint_name(step)}}-{{os.getpid()}}").mkdir()
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(5)
                return real(run_dir, step, *args, **kw)
            runs.write_checkpoint = interrupted
            sys.exit(main({["train", "vae", "--data", "fake", *sets(TINY + FAST + ["train.steps=6"]),
                           "--out", str(run)]!r}))
            """)
        short_error(p)
        if p.returncode != 130:
            raise Fail(f"exit {p.returncode}, not 130: {clip(p.last())}")
        p = m.cli("resume", run)
        no_traceback(p)
        ckpts = sorted(x.name for x in (run / "checkpoints").glob("*step-*"))
        if p.returncode != 0 or ckpts != ["step-00000004", "step-00000006"]:
            raise Fail(f"the resume after it: exit {p.returncode}, checkpoints {ckpts}: {clip(p.last())}")
    m.attack(cat, "a double SIGINT during a checkpoint, then resume", double_sigint)


def held(m: Matrix) -> None:
    cat = "held"

    def damaged_checkpoint(box):
        run = m.run_copy(box)
        newest = run / "checkpoints" / "step-00000004"
        data = (newest / "model.safetensors").read_bytes()
        (newest / "model.safetensors").write_bytes(data[: len(data) // 2])
        rows = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        p = m.cli("resume", run, "--steps", 6)
        no_traceback(p)
        if p.returncode != 0:
            raise Fail(f"resume failed (exit {p.returncode}): {clip(p.last())}")
        if "skipping damaged checkpoint" not in p.stderr:
            raise Fail("the damaged checkpoint was not named")
        after = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        if after[:2] != rows[:2] or not (run / "checkpoints" / "step-00000006").is_dir():
            raise Fail("did not resume from step 2 keeping rows 1-2")
    m.attack(cat, "a truncated newest checkpoint is skipped on resume", damaged_checkpoint)

    def pickled_weights(command):
        def attack(box):
            import torch

            run = m.run_copy(box)
            marker = box / "pwned"
            buf = box / "evil.pt"
            torch.save({"encoder.weight": _Evil(marker)}, buf)
            for ckpt in sorted((run / "checkpoints").glob("step-*")):
                rewrite_checkpoint_file(ckpt, "model.safetensors", buf.read_bytes())
            args = {"sample": ["sample", run, "--n", 4, "--out", box / "s.png"], "resume": ["resume", run, "--steps", 6],
                    "eval": ["eval", run, "--metrics", "recon-mse"]}[command]
            p = m.cli(*args)
            if marker.exists():
                raise Fail("the pickle's payload ran")
            short_error(p)
        return attack

    for command in ("sample", "resume", "eval"):
        m.attack(cat, f"model.safetensors replaced by a pickle with a payload (manifest matching): {command}",
                 pickled_weights(command))

    def legacy_pickle(box):
        import torch

        run = m.run_copy(box)
        marker = box / "pwned"
        for ckpt in sorted((run / "checkpoints").glob("step-*")):
            for name in ("manifest.json", "trainer.json", "trainer.safetensors"):
                (ckpt / name).unlink()
            torch.save({"step": 4, "evil": _Evil(marker)}, ckpt / "trainer.pt")
        p = m.cli("resume", run)
        if marker.exists():
            raise Fail("the pickle's payload ran")
        short_error(p, "trainer.pt")
    m.attack(cat, "a legacy trainer.pt pickle with a payload, resume", legacy_pickle)

    def no_fallback(box):
        empty = box / "empty"
        empty.mkdir()
        p = m.cli("train", "vae", "--data", "mnist", "--data-dir", empty, *sets(TINY + FAST), "--out", box / "r",
                  timeout=60)
        # the property that held is "no fallback": a refusal naming where it looked (a designed
        # listing of a few lines, so not held to the one-line rule), nothing fetched, no run
        no_traceback(p)
        if p.returncode == 0 or "not found" not in p.stderr or len(p.stderr.splitlines()) > 20:
            raise Fail(f"exit {p.returncode}, not a bounded 'not found' refusal: {clip(p.last())}")
        absent(box / "r", "the run directory")
        if list(empty.iterdir()):
            raise Fail("files were fetched into --data-dir")
    m.attack(cat, "train --data-dir an empty folder: no fallback, no download, no run", no_fallback)

    def second_writer(box):
        import fcntl

        run = m.run_copy(box)
        fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # this process holds the run, as a train would
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            before = tree(run)
            p = m.cli("resume", run, "--steps", 6)
        finally:
            os.close(fd)
        short_error(p, str(os.getpid()))
        same_tree(before, run, "the run")
    m.attack(cat, "resume while another live process holds the run's .lock", second_writer)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def render(m: Matrix, wall: float) -> str:
    lines = ["# Attack matrix (issue 42), rerun", "",
             f"{len(m.results)} attacks against real tiny runs (`vae` on `fake`, 4 steps; `dcgan` for `genae manifold`), each in its own "
             f"child process; {wall:.0f} s in all ({m.setup_s:.0f} s of it training the run and the sweep "
             "they copy).", "",
             "| category | attempts | held | failed |", "|---|---:|---:|---:|"]
    total = [0, 0, 0]
    for cat in CATEGORIES:
        rows = [r for r in m.results if r["category"] == cat]
        h = sum(r["held"] for r in rows)
        total = [total[0] + len(rows), total[1] + h, total[2] + len(rows) - h]
        lines.append(f"| {cat} | {len(rows)} | {h} | {len(rows) - h} |")
    lines.append(f"| **all** | **{total[0]}** | **{total[1]}** | **{total[2]}** |")
    failed = [r for r in m.results if not r["held"]]
    lines += ["", "## Failures", ""]
    lines += [f"- [{r['category']}] {r['attack']}: {r['reason']}" for r in failed] or ["None: every attack held."]
    lines += ["", "## Every attack", "", "| category | attack | result | s |", "|---|---|---|---:|"]
    lines += [f"| {r['category']} | {r['attack'].replace('|', '/')} | {'held' if r['held'] else 'FAILED'} | "
              f"{r['seconds']:.1f} |" for r in m.results]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/attack-matrix", help="where matrix.md and matrix.json go")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder of runs (printed)")
    p.add_argument("--only", default=None, help="comma-separated categories to run (default: all)")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(CATEGORIES)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="genae-attack-matrix-"))
    try:
        m = Matrix(work)
        print(f"setup in {work}: one tiny run and a one-point sweep ...", flush=True)
        m.setup()
        print(f"setup: {m.setup_s:.1f} s", flush=True)
        for cat, fn in zip(CATEGORIES[:5] + ["held"],
                           (outside_data, metric_history, silent_wrong, denial_of_service, raw_tracebacks, held)):
            if cat in only:
                print(cat, flush=True)
                fn(m)
        wall = time.perf_counter() - t0
        text = render(m, wall)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "matrix.md").write_text(text)
        (out / "matrix.json").write_text(json.dumps({"wall_s": wall, "setup_s": m.setup_s,
                                                     "attacks": m.results}, indent=1))
        print()
        print(text.split("\n## Every attack")[0])
        print(f"written: {out / 'matrix.md'}")
        return 1 if any(not r["held"] for r in m.results) else 0
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
