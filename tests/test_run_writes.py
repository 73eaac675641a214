"""Nothing outside a run is ever written, nothing inside is lost (issue 42, the write side): every
finding of the attack matrix becomes a test here. Each one failed on the main before it.

- links planted in a run (``.lock``, ``metrics.jsonl``, ``loss_curves.png``, ``checkpoints``,
  ``samples``, ``report.html``, a sweep's ``runs/<point>``) never carry a write, a deletion or a
  pruning outside: the command refuses in one line, or replaces the link and goes on; the files
  outside stay byte for byte as they were;
- ``report.html`` embeds only the run's own regular files;
- the metric history survives an interrupted rewrite, a file-size limit and a malformed row.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
from pathlib import Path

import pytest

from conftest import fast_train_overrides, tiny_overrides
from genae import fileio, runs
from genae.config import build_config
from genae.errors import GenaeError
from genae.training import resume, train
from genae.viz.report import write_report
from test_cli import _sets, genae

SECRET = b"outside the run: must stay exactly as it is\n"


def _cfg(root, name="run", steps=4, **extra):
    return build_config("vae", "fake", out=str(Path(root) / name),
                        overrides=tiny_overrides("vae") + fast_train_overrides(steps, **extra))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run: checkpoints at steps 2 and 4, a metrics row per step, samples at step 4."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENAE_CACHE", str(root / "cache"))
        return train(_cfg(root, log_every=1))


@pytest.fixture
def run(trained, tmp_path):
    return Path(shutil.copytree(trained, tmp_path / "run", symlinks=True))


def _tree(path: Path) -> dict[str, bytes | str]:
    """Every entry below ``path`` (links not followed): a file's bytes, a link's target, ``dir``."""
    out = {}
    for p in sorted(path.rglob("*")):
        key = str(p.relative_to(path))
        out[key] = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
    return out


def _killed_halfway(monkeypatch) -> None:
    """Every durable write from now on stops halfway through its data, as a kill would."""
    real = fileio.write_synced

    def killed(path, data):
        real(path, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio, "write_synced", killed)


def _outside(tmp_path: Path) -> Path:
    """A folder of someone else's files, and one file in it (``precious``)."""
    folder = tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious").write_bytes(SECRET)
    (folder / "sub" / "notes.txt").write_bytes(SECRET * 3)
    return folder


# --------------------------------------------------------------------------------------------
# Links in a run never carry a write outside
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", [".lock", "metrics.jsonl", "checkpoints", "samples"])
def test_resume_refuses_a_link_where_it_writes_in_place_and_touches_nothing_outside(run, tmp_path, entry):
    """A link at ``.lock`` (the PID was written through it), ``metrics.jsonl`` (rewritten and
    appended through it), ``checkpoints`` (another run's: resume pruned them) or ``samples``: resume
    stops before any work with one line naming the link; the outside stays byte-identical."""
    outside = _outside(tmp_path)
    if entry == "checkpoints":  # another run's, which resume pruned
        outside = train(_cfg(tmp_path, "other"))
    target = {".lock": outside / "precious", "metrics.jsonl": outside / "precious",
              "checkpoints": outside / "checkpoints", "samples": outside}[entry]
    if (run / entry).is_dir():
        shutil.rmtree(run / entry)
    else:
        (run / entry).unlink(missing_ok=True)
    (run / entry).symlink_to(target)
    def own():  # the run's files but the lock's PID (the lock is taken before the check)
        return {k: v for k, v in _tree(run).items() if k != ".lock" or entry == ".lock"}

    before, inside = _tree(outside), own()
    with pytest.raises(GenaeError, match="symbolic link") as err:
        resume(run, steps=8)
    assert str(run / entry) in str(err.value) and len(str(err.value).splitlines()) == 1
    assert _tree(outside) == before and own() == inside  # stopped before any work


def test_resume_with_a_linked_lock_fails_in_one_line_on_the_command_line(run, tmp_path):
    outside = _outside(tmp_path)
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(outside / "precious")
    proc = genae("resume", run, "--steps", 6, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "symbolic link" in proc.stderr
    assert (outside / "precious").read_bytes() == SECRET


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_train_into_a_folder_holding_only_a_linked_lock_is_refused(tmp_path, link):
    """``new_run_dir`` ignores a lone ``.lock`` (a crashed train's); a link there was truncated and
    given the PID."""
    outside = _outside(tmp_path)
    out = tmp_path / "d"
    out.mkdir()
    if link == "symbolic":
        (out / ".lock").symlink_to(outside / "precious")
    else:
        os.link(outside / "precious", out / ".lock")
    with pytest.raises(GenaeError, match="symbolic link" if link == "symbolic" else "hard links"):
        train(_cfg(tmp_path, "d"))
    assert (outside / "precious").read_bytes() == SECRET and sorted(p.name for p in out.iterdir()) == [".lock"]


def test_linked_files_replaced_whole_are_replaced_not_written_through(run, tmp_path):
    """``loss_curves.png`` (savefig followed the link), ``eval.json`` and ``report.html`` as links:
    resume, eval and report go on, replacing each link by the run's own file; the outside stays."""
    outside = _outside(tmp_path)
    for name in ("loss_curves.png", "eval.json", "report.html"):
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(outside / "precious")
    before = _tree(outside)
    resume(run, steps=6)
    runs.write_eval(run, runs.run_config(run)[0], {"recon-mse": {"value": 1.0}}, step=6)
    write_report(run)
    assert _tree(outside) == before
    for name in ("loss_curves.png", "eval.json", "report.html"):
        assert (run / name).is_file() and not (run / name).is_symlink(), name
    assert (run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(json.loads((run / "eval.json").read_text())["metrics"]) == {"recon-mse"}  # nothing read through it


def test_report_embeds_only_the_runs_own_regular_files(run, tmp_path):
    """A linked ``loss_curves.png``, newest sample grid, ``eval.json``, ``config.yaml`` or
    ``metrics.jsonl`` was read and embedded (base64) in ``report.html``."""
    import base64

    outside = _outside(tmp_path)
    secret = SECRET + b"token-0123456789"
    (outside / "precious").write_bytes(secret)
    (run / "loss_curves.png").unlink(missing_ok=True)
    (run / "loss_curves.png").symlink_to(outside / "precious")
    (run / "samples" / "samples_99999999.png").symlink_to(outside / "precious")
    (outside / "eval.json").write_text(json.dumps({"step": 4, "metrics": {"leaked-metric": {"value": 1.0}}}))
    (run / "eval.json").symlink_to(outside / "eval.json")
    (outside / "metrics.jsonl").write_text(json.dumps({"step": 4, "leaked/loss": 1.0}) + "\n")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    text = write_report(run).read_text()
    assert base64.b64encode(secret).decode() not in text and "token-0123456789" not in text
    assert "leaked" not in text and "step 99999999" not in text
    assert "samples at step 4" in text  # the run's own newest grid is still there


def test_rerun_sweep_never_deletes_through_a_linked_point(tmp_path, monkeypatch):
    """A sweep point whose run folder is a link: the rerun deleted the files of the folder it
    points to (as a train killed before writing its config). Now the point fails, naming the link,
    and nothing is started or deleted; the same for a link to a real run elsewhere."""
    import subprocess

    from genae import sweep

    started = []
    monkeypatch.setattr(sweep, "spawn_genae", lambda args, *a, **k: started.append(args) or subprocess.Popen(["true"]))
    spec = sweep.SweepSpec("vae", sets=["data.name=fake", *tiny_overrides("vae"), *fast_train_overrides(2)],
                           seeds=[0, 1])
    out = sweep.run_sweep(spec, tmp_path / "sweep", log=lambda s: None)  # the "trains" leave no folder
    assert len(started) == 2
    outside, elsewhere = _outside(tmp_path), train(_cfg(tmp_path, "elsewhere"))
    points = [out / p["run"] for p in json.loads((out / "manifest.json").read_text())["points"]]
    for point, target in zip(points, (outside, elsewhere)):
        point.symlink_to(target)
    before, run_before = _tree(outside), _tree(elsewhere)
    started.clear()
    sweep.run_sweep(spec, out, log=lambda s: None)
    assert started == [] and _tree(outside) == before and _tree(elsewhere) == run_before
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["failed", "failed"]
    assert all("symbolic link" in p["message"] for p in manifest["points"])
    # the sweep's own folders may not be links either
    shutil.rmtree(out / "logs")
    (out / "logs").symlink_to(outside)
    with pytest.raises(GenaeError, match="symbolic link"):
        sweep.run_sweep(spec, out, log=lambda s: None)
    assert _tree(outside) == before


def test_checkpoint_writes_and_pruning_stay_in_the_runs_own_folder(run, tmp_path):
    """The API below resume: ``write_checkpoint`` and ``clean_leftovers`` on a run whose
    ``checkpoints`` is a link to another run's write and delete nothing there."""
    other = train(_cfg(tmp_path, "other"))
    (other / "checkpoints" / ".tmp-step-00000006-1").mkdir()  # a leftover clean_leftovers would remove
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(other / "checkpoints")
    before = _tree(other)
    method = runs.load_run(other)
    cfg = runs.run_config(run)[0]
    with pytest.raises(GenaeError, match="symbolic link"):
        runs.write_checkpoint(run, 6, method, {"step": 6}, cfg, keep=1)
    with pytest.raises(GenaeError, match="symbolic link"):
        runs.clean_leftovers(run)
    assert _tree(other) == before


# --------------------------------------------------------------------------------------------
# The metric history is never lost
# --------------------------------------------------------------------------------------------
def _rewind(run: Path) -> bytes:
    """Make the run resume from step 2 with rows 3 and 4 logged after it (they must go)."""
    shutil.rmtree(run / "checkpoints" / "step-00000004")
    return (run / "metrics.jsonl").read_bytes()


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_resume_with_nothing_to_drop_only_appends(run):
    before = (run / "metrics.jsonl").read_bytes()
    inode = (run / "metrics.jsonl").stat().st_ino
    resume(run, steps=6)
    assert (run / "metrics.jsonl").stat().st_ino == inode  # appended, not rewritten
    assert (run / "metrics.jsonl").read_bytes().startswith(before) and _steps(run) == [1, 2, 3, 4, 5, 6]


def test_an_interrupted_metrics_rewrite_leaves_every_row(run, monkeypatch):
    """The rewrite on resume truncated the file, then wrote: a kill in between left 0 rows. Now a
    kill (here KeyboardInterrupt halfway through writing) leaves the old file and no temporary."""
    before = _rewind(run)
    _killed_halfway(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        resume(run)
    assert (run / "metrics.jsonl").read_bytes() == before and not list(run.glob("*.tmp-*"))
    monkeypatch.undo()
    resume(run)
    assert _steps(run) == [1, 2, 3, 4]  # 3 and 4 logged again by the resumed run, once


@pytest.mark.parametrize("rewrite", [True, False], ids=["rewrite", "append"])
def test_a_file_size_limit_names_the_file_and_loses_no_row(run, rewrite):
    """RLIMIT_FSIZE below the metrics file: it was cut from 3000 rows to 942 with "File too large"
    naming no file. Now the command fails naming metrics.jsonl, every row still there; whether the
    resume must drop rows (an atomic rewrite) or only appends."""
    rows = [json.dumps({"step": 1, "vae/loss": 0.5, "pad": "x" * 80}) for _ in range(3000)]
    tail = _rewind(run).splitlines(keepends=True)[1:] if rewrite else []  # rows 2.. (3 and 4 must go)
    (run / "metrics.jsonl").write_bytes("\n".join(rows).encode() + b"\n" + b"".join(tail))
    before = (run / "metrics.jsonl").read_bytes()
    limit = len(before) // 3  # room for the run's small files, not for its metric history

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # from step 2 to 4 (rows 3 and 4 dropped first), or from 4 to 6 (appending)
    proc = genae("resume", run, *([] if rewrite else ["--steps", 6]), check=False, preexec_fn=limited)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"error: File too large ({run / 'metrics.jsonl'})", proc.stderr
    assert (run / "metrics.jsonl").read_bytes() == before and not list(run.glob("*.tmp-*"))


def test_a_malformed_row_is_named_with_its_line_and_kept(run, capsys):
    """A malformed row made resume crash after truncating the file to 1 row. Now each line that is
    not a row is named (file and line) and kept where it was; rows after the checkpoint go."""
    lines = _rewind(run).splitlines(keepends=True)
    damaged = [lines[0], b"not json {\n", b"[1, 2]\n", lines[1], lines[2], lines[3]]
    (run / "metrics.jsonl").write_bytes(b"".join(damaged))
    resume(run)
    err = capsys.readouterr().err
    assert f"{run / 'metrics.jsonl'}: lines 2, 3 are not metrics rows (line 2: not JSON)" in err
    after = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    assert after[:4] == damaged[:4]  # everything up to the checkpoint's step, byte for byte
    assert [json.loads(line)["step"] for line in after[4:]] == [3, 4]
    assert (run / "loss_curves.png").is_file()


def test_a_half_written_last_line_is_kept_on_a_line_of_its_own(run, capsys):
    """A killed writer's half line without its newline: the next row was glued to it (both lost)."""
    lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    (run / "metrics.jsonl").write_bytes(b"".join(lines) + b'{"step": 5, "vae/lo')
    resume(run, steps=6)
    assert "line 5 is not a metrics row" in capsys.readouterr().err
    after = (run / "metrics.jsonl").read_bytes().splitlines()
    assert after[:5] == [line.rstrip(b"\n") for line in lines] + [b'{"step": 5, "vae/lo']
    assert [json.loads(line)["step"] for line in after[5:]] == [5, 6]


def test_append_failing_midway_cuts_back_and_names_the_file(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"step": 1}\n')
    real, inode, calls = os.write, path.stat().st_ino, []

    def short_then_full(fd, data):  # the first write lands in part, the next finds the disk full
        if os.fstat(fd).st_ino != inode:
            return real(fd, data)
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:4]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(OSError, match="No space left") as err:
        fileio.append(path, b'{"step": 2}\n', root=tmp_path)
    monkeypatch.undo()
    assert err.value.filename == str(path) and path.read_bytes() == b'{"step": 1}\n'


# --------------------------------------------------------------------------------------------
# More links and hard links
# --------------------------------------------------------------------------------------------
def test_resume_refuses_a_hard_linked_metrics_file(run, tmp_path):
    """An append to a file of two names changes the other name's data too: a ``metrics.jsonl``
    hard-linked to a file outside is refused before any work, the outside file unchanged."""
    outside = _outside(tmp_path)
    (run / "metrics.jsonl").unlink()
    os.link(outside / "precious", run / "metrics.jsonl")
    with pytest.raises(GenaeError, match="hard links") as err:
        resume(run, steps=8)
    assert str(run / "metrics.jsonl") in str(err.value)
    assert (outside / "precious").read_bytes() == SECRET and runs.find_checkpoint(run)[0].name == "step-00000004"


def test_a_sweep_point_whose_log_is_a_link_fails_and_nothing_is_appended(tmp_path, monkeypatch):
    """A job's log is appended to: a link at ``logs/<point>.log`` would carry the command lines
    (and the child's output) into the file it points to. The point fails naming the link."""
    import subprocess

    from genae import sweep

    started = []
    monkeypatch.setattr(sweep, "spawn_genae", lambda args, *a, **k: started.append(args) or subprocess.Popen(["true"]))
    spec = sweep.SweepSpec("vae", sets=["data.name=fake", *tiny_overrides("vae"), *fast_train_overrides(2)],
                           seeds=[0])
    out = sweep.run_sweep(spec, tmp_path / "sweep", log=lambda s: None)
    outside = _outside(tmp_path)
    log = out / json.loads((out / "manifest.json").read_text())["points"][0]["log"]
    log.unlink()
    log.symlink_to(outside / "precious")
    started.clear()
    sweep.run_sweep(spec, out, log=lambda s: None)
    point = json.loads((out / "manifest.json").read_text())["points"][0]
    assert started == [] and point["status"] == "failed" and str(log) in point["message"]
    assert (outside / "precious").read_bytes() == SECRET


def test_report_leaves_out_a_linked_config(run, tmp_path):
    """``config.yaml`` is printed in the report: a link there (to a file holding a secret) is left
    out, as if the run had none."""
    outside = _outside(tmp_path)
    (outside / "config.yaml").write_bytes((run / "config.yaml").read_bytes() + b"# token-0123456789\n")
    (run / "config.yaml").unlink()
    (run / "config.yaml").symlink_to(outside / "config.yaml")
    text = write_report(run).read_text()
    assert "token-0123456789" not in text and "<h2>Config</h2>" not in text


# --------------------------------------------------------------------------------------------
# Files with a previous good version are replaced whole, and errors name them
# --------------------------------------------------------------------------------------------
def _write_eval(run):
    runs.write_eval(run, runs.run_config(run)[0], {"recon-mse": {"value": 2.0}}, step=4)


def _write_config(run):
    cfg, info = runs.run_config(run)
    runs.write_config(run, cfg, info)


def _write_curves(run):
    from genae.viz.plots import loss_curves, save_figure

    save_figure(loss_curves(runs.read_metrics(run / "metrics.jsonl")), run / "loss_curves.png", root=run)


def _write_run_info(run):
    runs.write_run_info(run, runs.run_config(run)[0], runs.load_run(run), {}, "cpu", 4, 1.0)


@pytest.mark.parametrize("name, write", [("eval.json", _write_eval), ("config.yaml", _write_config),
                                         ("loss_curves.png", _write_curves), ("report.html", write_report),
                                         ("run.json", _write_run_info)],
                         ids=["eval", "config", "figure", "report", "run-info"])
def test_an_interrupted_rewrite_leaves_the_previous_file(run, monkeypatch, name, write):
    """A kill halfway through rewriting any file that has a good version leaves that version (and
    no temporary file): each is written to a temporary file and renamed over."""
    if not (run / name).exists():  # eval.json and report.html: a first version
        write(run)
    before = (run / name).read_bytes()
    _killed_halfway(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write(run)
    monkeypatch.undo()
    assert (run / name).read_bytes() == before and not list(run.rglob("*.tmp-*"))


def test_atomic_write_over_the_file_size_limit_names_the_target_and_keeps_it(tmp_path):
    """``File too large`` named no file; the temporary one is no better. Now the error names the
    target, which keeps its old bytes, and no temporary file is left."""
    path = tmp_path / "eval.json"
    path.write_bytes(b"old")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError) as err:
            fileio.atomic_write(path, b"x" * 10_000, root=tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.filename == str(path) and "File too large" in str(err.value)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_writes_below_a_root_never_pass_through_a_linked_folder(tmp_path):
    """The primitives themselves: a linked folder between the run and the file is refused (named)
    for a whole write, an append and a delete; the folder it points to is left as it was."""
    outside = _outside(tmp_path)
    root = tmp_path / "run"
    root.mkdir()
    (root / "samples").symlink_to(outside / "sub")
    before = _tree(outside)
    for attempt in (lambda: fileio.atomic_write(root / "samples" / "x.png", b"png", root=root),
                    lambda: fileio.append(root / "samples" / "notes.txt", b"row\n", root=root),
                    lambda: fileio.remove(root, root / "samples" / "notes.txt"),
                    lambda: fileio.atomic_write(tmp_path / "elsewhere.txt", b"x", root=root)):
        with pytest.raises(GenaeError):
            attempt()
    assert _tree(outside) == before and not (tmp_path / "elsewhere.txt").exists()
    assert fileio.read_own(root, root / "samples" / "notes.txt") is None
    fileio.remove(root, root / "samples")  # the link itself goes; what it pointed to stays
    assert not (root / "samples").exists() and _tree(outside) == before
