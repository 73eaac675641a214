"""Run directories a researcher can trust (issue 24): every reproduction of a fault or hostile file
becomes a test here. Each one failed on the main before this file existed.

- nothing read from a run executes code (a crafted pickle in ``trainer.pt``);
- damaged checkpoints are skipped and named, never restarted over or pruned;
- one writer per run; ``--out`` never writes into someone else's folder;
- one config policy on resume (the checkpoint's config is the truth);
- ``eval.json`` never mixes steps;
- one-line errors for bad input, a read-only folder and a full disk, with nothing lost.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import fast_train_overrides, tiny_overrides
from genae import runs, state_io
from genae.config import build_config
from genae.errors import ConfigError, GenaeError
from genae.training import resume, train
from test_cli import SRC, _sets, genae


def _cfg(tmp_path, name="run", method="vae", steps=6, **extra):
    return build_config(method, "fake", overrides=tiny_overrides(method) + fast_train_overrides(steps, **extra),
                        out=str(tmp_path / name))


def _weights(run, step):
    return load_file(str(Path(run) / "checkpoints" / runs.checkpoint_name(step) / "model.safetensors"))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _steps(run):
    return [runs.checkpoint_step(p) for p in runs.checkpoint_dirs(run)]


class _Evil:
    """A pickle that runs a shell command when it is loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _to_legacy(ckpt: Path, state=None) -> None:
    """Rewrite a checkpoint in the layout of checkpoints written before manifests: a pickled
    ``trainer.pt`` (``state``, default the checkpoint's own trainer state) and no manifest."""
    if state is None:
        state = runs.read_checkpoint(ckpt)[1]
    for name in (runs.MANIFEST, runs.STATE_JSON, runs.STATE_TENSORS):
        (ckpt / name).unlink()
    torch.save(state, ckpt / runs.LEGACY_STATE)


# --------------------------------------------------------------------------------------------
# The trainer state format
# --------------------------------------------------------------------------------------------
def test_state_round_trip_is_exact():
    """Every kind of leaf a trainer state holds comes back equal and of the same type."""
    tree = {"step": 7, "lr": 0.1 + 0.2, "nan": float("inf"), "name": "x", "none": None, "flag": True,
            "t": torch.randn(3, 2), "bytes": torch.ByteTensor([1, 2, 3]),
            "np": np.random.RandomState(3).get_state(), "py": random.Random(1).getstate(),
            "opt": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"params": [0, 1],
                                                                                 "betas": (0.5, 0.999)}]},
            "npscalar": np.float64(2.5), "$tensor": "not a tag"}
    back = state_io.loads(*state_io.dumps(tree), source="test")
    assert back["lr"] == tree["lr"] and back["nan"] == float("inf") and back["none"] is None
    assert torch.equal(back["t"], tree["t"]) and back["bytes"].dtype == torch.uint8
    assert back["np"][0] == "MT19937" and back["np"][1].dtype == np.uint32
    assert np.array_equal(back["np"][1], tree["np"][1]) and back["np"][2:] == tree["np"][2:]
    assert back["py"] == tree["py"] and isinstance(back["py"][1], tuple)
    assert list(back["opt"]["state"]) == [0] and back["opt"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert isinstance(back["npscalar"], np.float64) and back["$tensor"] == "not a tag"
    r = random.Random()
    r.setstate(back["py"])  # accepted by the consumers as is
    np.random.RandomState().set_state(back["np"])


def test_damaged_state_file_is_a_clear_error():
    js, ts = state_io.dumps({"t": torch.ones(2)})
    with pytest.raises(state_io.StateFileError, match="somewhere/trainer.json"):
        state_io.loads(js[:-3], ts, "somewhere/trainer.json")
    with pytest.raises(state_io.StateFileError, match="somewhere"):
        state_io.loads(js, ts[:40], "somewhere")


# --------------------------------------------------------------------------------------------
# 1. No code runs from a run directory
# --------------------------------------------------------------------------------------------
def test_crafted_pickle_in_trainer_pt_never_runs(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    marker = tmp_path / "pwned"
    for ckpt in runs.checkpoint_dirs(run):
        _to_legacy(ckpt, state={"step": 4, "evil": _Evil(marker)})
    for args in (["resume", run], ["eval", run, "--metrics", "recon-mse"],
                 ["sample", run, "--out", tmp_path / "s.png"]):
        proc = genae(*args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "trainer.pt was refused" in proc.stderr and "Traceback" not in proc.stderr
        assert not marker.exists(), args
    genae("report", run, check=False)
    assert not marker.exists()


def test_checkpoints_of_the_previous_format_still_load_and_resume_exactly(tmp_path):
    """A run written before manifests (pickled trainer.pt with NumPy RNG state) resumes to the
    same weights as the uninterrupted run, and evaluates and samples."""
    full = train(_cfg(tmp_path, "full", steps=6))
    cut = train(_cfg(tmp_path, "cut", steps=6))
    shutil.rmtree(cut / "checkpoints" / "step-00000006")
    _to_legacy(cut / "checkpoints" / "step-00000004")
    assert runs.latest_checkpoint(cut).name == "step-00000004"
    genae("sample", cut, "--n", 4, "--out", tmp_path / "s.png")
    resume(cut)
    assert _same(_weights(full, 6), _weights(cut, 6))
    assert (cut / "checkpoints" / "step-00000006" / runs.MANIFEST).is_file()  # written in the new format


def test_a_run_from_before_flush_denormal_resumes_without_it(tmp_path, monkeypatch):
    """``train.flush_denormal`` (on by default) came after runs existed: a run whose config has no
    such key trained without it, and resumes without it (runs.LEGACY_DEFAULTS), keeping its resume
    exact; a run that has the key keeps what it says."""
    cut = train(_cfg(tmp_path, "cut", steps=6))
    shutil.rmtree(cut / "checkpoints" / "step-00000006")
    ckpt = cut / "checkpoints" / "step-00000004"
    _to_legacy(ckpt)  # no manifest: its config.yaml may be edited like one written back then
    for path in (cut / "config.yaml", ckpt / "config.yaml"):
        text = path.read_text()
        assert "flush_denormal: true" in text
        path.write_text(text.replace("  flush_denormal: true\n", ""))
    calls = []
    real = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: calls.append(on) or real(on))
    resume(cut)
    assert calls == []  # trained as before, subnormals kept
    written = yaml.safe_load((cut / "checkpoints" / "step-00000006" / "config.yaml").read_text())
    assert written["train"]["flush_denormal"] is False  # and its new checkpoint says so
    new = train(_cfg(tmp_path, "new", steps=2))
    calls.clear()
    resume(new, steps=4)
    assert calls == [True, False]


# --------------------------------------------------------------------------------------------
# 2. Damaged checkpoints: skipped, named, never restarted over or pruned
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["delete-state", "truncate-weights", "empty-latest", "no-manifest"])
def test_damaged_newest_checkpoint_falls_back_and_deletes_nothing_good(tmp_path, damage, capsys):
    full = train(_cfg(tmp_path, "full", steps=8, keep_ckpts=3))
    cut = train(_cfg(tmp_path, "cut", steps=6, keep_ckpts=3))
    newest = cut / "checkpoints" / "step-00000006"
    if damage == "delete-state":
        (newest / runs.STATE_TENSORS).unlink()
    elif damage == "truncate-weights":
        data = (newest / runs.MODEL_FILE).read_bytes()
        (newest / runs.MODEL_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "empty-latest":
        (cut / "checkpoints" / "latest").write_text("")
    else:
        (newest / runs.MANIFEST).unlink()
    capsys.readouterr()
    ckpt = runs.latest_checkpoint(cut)
    err = capsys.readouterr().err
    if damage == "empty-latest":  # the pointer is a note: the newest complete checkpoint is used
        assert ckpt == newest and err == ""
    else:
        assert ckpt.name == "step-00000004"
        assert "skipping damaged checkpoint" in err and "step-00000006" in err
    rows_before = runs.read_metrics(cut / "metrics.jsonl")
    resume(cut, steps=8)
    assert _same(_weights(full, 8), _weights(cut, 8))  # resumed at 4 or 6, never at 0
    rows = runs.read_metrics(cut / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8] and rows[0] == rows_before[0]
    assert _steps(cut) == [4, 6, 8]


def test_eval_and_sample_fall_back_past_a_truncated_checkpoint(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    weights = run / "checkpoints" / "step-00000004" / runs.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    proc = genae("eval", run, "--metrics", "recon-mse", "--json")
    assert json.loads(proc.stdout)["recon-mse"]["step"] == 2
    assert "step-00000004" in proc.stderr and "skipping damaged" in proc.stderr
    genae("sample", run, "--n", 4, "--out", tmp_path / "s.png")
    bad = genae("eval", run, "--metrics", "recon-mse", "--step", 4, check=False)
    assert bad.returncode == 2 and "is damaged" in bad.stderr and "Traceback" not in bad.stderr


def test_resume_refuses_when_every_checkpoint_is_damaged(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    for ckpt in runs.checkpoint_dirs(run):
        (ckpt / runs.MANIFEST).unlink()
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    proc = genae("resume", run, check=False)
    assert proc.returncode == 2 and "none is complete" in proc.stderr and "nothing was changed" in proc.stderr
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_latest_pointer_cannot_load_another_runs_weights(tmp_path):
    mine = train(_cfg(tmp_path, "mine", steps=4))
    other = train(_cfg(tmp_path, "other", steps=4, seed=5))
    (mine / "checkpoints" / "latest").write_text("../../other/checkpoints/step-00000004")
    assert runs.latest_checkpoint(mine) == mine / "checkpoints" / "step-00000004"
    loaded = runs.load_run(mine).state_dict()
    assert _same({k: v for k, v in loaded.items()}, _weights(mine, 4))
    assert not _same(_weights(mine, 4), _weights(other, 4))


def test_leftover_temporary_checkpoint_is_removed_at_the_next_start(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    junk = run / "checkpoints" / ".tmp-step-00000006-12345"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"x" * 1000)
    (run / "config.yaml.tmp-99-abcd").write_text("partial")
    resume(run, steps=6)
    assert not junk.exists() and not (run / "config.yaml.tmp-99-abcd").exists()


# --------------------------------------------------------------------------------------------
# 4. One writer per run; --out never mixes runs or touches a stranger's folder
# --------------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    with runs.RunLock(run):
        proc = genae("resume", run, "--steps", 6, check=False)
        assert proc.returncode == 2 and f"PID {os.getpid()}" in proc.stderr
        with pytest.raises(GenaeError, match="in use"):
            resume(run, steps=6)
    rows = runs.read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4]  # nothing was written by the refused writers
    resume(run, steps=6)  # released: the lock dies with its holder
    assert _steps(run) == [4, 6]


def test_two_trains_into_one_out_dir_one_is_refused(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    lock = runs.RunLock(out).acquire()  # the first `genae train --out d` is running
    try:
        proc = genae("train", "ae", "--data", "fake", "--out", out,
                     *_sets(tiny_overrides("ae") + fast_train_overrides(2)), check=False)
    finally:
        lock.release()
    assert proc.returncode == 2 and "in use" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_out_into_a_foreign_folder_or_a_file_is_refused_untouched(tmp_path):
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "precious.bin").write_bytes(b"keep me")
    sets = _sets(tiny_overrides("ae") + fast_train_overrides(2))
    proc = genae("train", "ae", "--data", "fake", "--out", folder, *sets, check=False)
    assert proc.returncode == 2 and "non-empty folder" in proc.stderr and "nothing in it was touched" in proc.stderr
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == [Path("checkpoints"),
                                                                      Path("checkpoints/precious.bin")]
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = genae("train", "ae", "--data", "fake", "--out", afile, *sets, check=False)
    assert proc.returncode == 2 and "is a file" in proc.stderr and afile.read_text() == "x"


def test_a_set_up_error_after_the_run_dir_exists_removes_exactly_what_it_made(tmp_path):
    """A set-up that fails once the run directory is written (here the balanced sampler: classes
    without examples under data.limit) removes what this attempt made, the new folders up to the
    first that existed, but keeps the user's own empty folder; the retry into the same --out works."""
    def cfg(out, limit):
        return build_config("ctrl-multi", "fake", out=str(out), overrides=tiny_overrides("ctrl-multi") + [
            f"data.limit={limit}", *fast_train_overrides(2, batch_size=10)])

    (tmp_path / "kept.txt").write_text("a file beside the run is not ours")
    for out in (tmp_path / "new" / "deeper" / "run", tmp_path / "mine"):
        if out.name == "mine":
            out.mkdir()
        with pytest.raises(ConfigError, match="have no examples"):
            train(cfg(out, 5))
        if out.name == "mine":
            assert out.is_dir() and list(out.iterdir()) == []  # the user's folder stays, emptied of ours
        else:
            assert not (tmp_path / "new").exists()
        assert runs.latest_checkpoint(train(cfg(out, None))).name == "step-00000002"
    assert (tmp_path / "kept.txt").is_file()


def test_atomic_write_uses_a_name_unique_to_the_process(tmp_path, monkeypatch):
    from genae import fileio

    seen = []
    real = fileio.write_synced
    monkeypatch.setattr(fileio, "write_synced", lambda p, d: (seen.append(p.name), real(p, d)))
    runs.atomic_write(tmp_path / "config.yaml", b"a")
    runs.atomic_write(tmp_path / "config.yaml", b"b")
    assert seen[0] != seen[1] and all(f"tmp-{os.getpid()}-" in n for n in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


# --------------------------------------------------------------------------------------------
# 5. One config policy on resume
# --------------------------------------------------------------------------------------------
def _edit_config(run, ns, key, value):
    import yaml

    d = yaml.safe_load((run / "config.yaml").read_text())
    d[ns][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))


def _trainer_lr(run, step):
    return runs.read_checkpoint(Path(run) / "checkpoints" / runs.checkpoint_name(step))[1]["optimizers"]["vae"]["param_groups"][0]["lr"]


def test_learning_rate_changed_on_resume_is_used_not_only_recorded(tmp_path):
    same = train(_cfg(tmp_path, "same", steps=4))
    resume(same, steps=6)
    hand = train(_cfg(tmp_path, "hand", steps=4))
    _edit_config(hand, "model", "lr", 0.01)
    resume(hand, steps=6)
    flag = train(_cfg(tmp_path, "flag", steps=4))
    resume(flag, steps=6, overrides=["model.lr=0.01"])
    assert _trainer_lr(same, 6) == pytest.approx(1e-3) and _trainer_lr(hand, 6) == 0.01
    assert _trainer_lr(flag, 6) == 0.01
    assert _same(_weights(hand, 6), _weights(flag, 6)) and not _same(_weights(hand, 6), _weights(same, 6))
    assert runs.checkpoint_config(flag, flag / "checkpoints" / "step-00000006")[0].model.lr == 0.01


def test_linear_schedule_keeps_its_factor_when_the_lr_changes(tmp_path):
    run = train(_cfg(tmp_path, steps=4, lr_schedule="linear"))
    resume(run, overrides=["model.lr=0.01"])  # at its end: nothing to train, state rewritten unchanged
    resume(run, steps=8, overrides=["model.lr=0.01"])
    # linear over 8 steps, 8 steps taken: factor 0; at step 6 it was 1 - 6/8 (the last write before 8)
    state = runs.read_checkpoint(run / "checkpoints" / "step-00000008")[1]
    assert state["optimizers"]["vae"]["param_groups"][0]["lr"] == pytest.approx(0.0)
    assert state["schedules"]["vae"]["base_lrs"] == [0.01]
    state6 = runs.read_checkpoint(run / "checkpoints" / "step-00000006")[1]
    assert state6["optimizers"]["vae"]["param_groups"][0]["lr"] == pytest.approx(0.01 * (1 - 6 / 8))


def test_an_edited_config_key_that_cannot_change_is_refused_naming_it(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    _edit_config(run, "model", "latent_dim", 7)
    _edit_config(run, "train", "seed", 3)
    proc = genae("resume", run, "--steps", 6, check=False)
    assert proc.returncode == 2 and "model.latent_dim" in proc.stderr and "train.seed" in proc.stderr
    assert "Traceback" not in proc.stderr and _steps(run) == [2, 4]
    # readers build the network from the checkpoint's config, so the edit cannot break them
    genae("sample", run, "--n", 4, "--out", tmp_path / "s.png")
    with pytest.raises(ConfigError, match="model.hidden"):
        resume(tmp_path / "run", overrides=["model.hidden=64"])


def test_resume_steps_extends_a_finished_run(tmp_path):
    full = train(_cfg(tmp_path, "full", steps=8))
    run = train(_cfg(tmp_path, "run", steps=4))
    genae("resume", run, "--steps", 8)
    assert _same(_weights(full, 8), _weights(run, 8))
    assert runs.run_config(run)[0].train.steps == 8


# --------------------------------------------------------------------------------------------
# 6. eval.json never mixes steps
# --------------------------------------------------------------------------------------------
def test_eval_json_entries_carry_their_step_and_never_mix(tmp_path):
    run = train(_cfg(tmp_path, steps=4))
    genae("eval", run, "--metrics", "recon-mse")
    genae("resume", run, "--steps", 6)
    genae("eval", run, "--metrics", "nac")
    record = json.loads((run / "eval.json").read_text())
    assert record["step"] == 6 and list(record["metrics"]) == ["nac"]
    assert record["metrics"]["nac"]["step"] == 6
    genae("eval", run, "--metrics", "recon-mse")
    record = json.loads((run / "eval.json").read_text())
    assert set(record["metrics"]) == {"nac", "recon-mse"}
    assert {v["step"] for v in record["metrics"].values()} == {6}
    genae("report", run)
    assert "step=6" in (run / "report.html").read_text()


# --------------------------------------------------------------------------------------------
# 7. One-line errors, nothing lost
# --------------------------------------------------------------------------------------------
def test_one_line_errors_for_bad_input(tmp_path):
    run = train(_cfg(tmp_path, steps=2))
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "dir").mkdir()
    cases = [
        (["train", "vae", "--data", "fake", "--config", tmp_path / "bin.yaml"], "not a text file"),
        (["train", "vae", "--data", "fake", "--set", "model.latent_dim=99999999999999999999",
          "--out", tmp_path / "x"], "model.latent_dim"),
        (["sample", run, "--out", tmp_path / "dir"], "is a directory"),
        (["sample", run, "--out", tmp_path / "s.png", "--class", 3], "unconditionally"),
        (["eval", run, "--metrics", "recon-mse", "--device", "cuda"], "no CUDA device"),
        (["sample", run, "--out", tmp_path / "s.png", "--device", "cuda"], "no CUDA device"),
    ]
    if torch.cuda.is_available():
        cases = cases[:4]
    for args, needle in cases:
        proc = genae(*args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
    assert not (tmp_path / "x").exists()
    method = runs.load_run(run)
    with pytest.raises(Exception, match="unconditionally"):
        method.sample(2, y=torch.zeros(2, dtype=torch.long))


def test_nonfinite_before_any_checkpoint_does_not_claim_one_is_intact(tmp_path):
    # Adam moves every weight by ~lr in its first step, so with lr = 1e30 the second step's KL
    # (mu² with mu ~ 1e30 in float32) is inf: the loss is non-finite at step 1, before any checkpoint
    sets = _sets(tiny_overrides("vae") + fast_train_overrides(4, ckpt_every=100) + ["model.lr=1e30"])
    proc = genae("train", "vae", "--data", "fake", "--out", tmp_path / "r", *sets, check=False)
    assert proc.returncode == 3, proc.stderr and "no checkpoint had been written yet" in proc.stderr
    assert "intact" not in proc.stderr


def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (read-only folder / full file system)")
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name, size):
        path = tmp_path / name
        _mount_tmpfs(path, size)
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_eval_in_a_read_only_run_prints_its_results_then_fails_cleanly(tmp_path, tmpfs):
    run = train(_cfg(tmp_path, steps=2))
    ro = tmpfs("ro", "8m")
    shutil.copytree(run, ro / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    proc = genae("eval", ro / "run", "--metrics", "recon-mse", check=False)
    assert proc.returncode == 2 and "recon-mse" in proc.stdout and "value=" in proc.stdout
    assert "could not write" in proc.stderr and "printed above" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = genae("resume", ro / "run", "--steps", 4, check=False)
    assert proc.returncode == 2 and "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr


def test_full_disk_at_checkpoint_time_leaves_the_previous_checkpoint_and_no_temporary(tmp_path, tmpfs):
    disk = tmpfs("disk", "1m")  # one tiny-VAE checkpoint (~0.65 MB) fits, two do not
    sets = _sets(tiny_overrides("vae") + fast_train_overrides(6, sample_every=100))
    proc = genae("train", "vae", "--data", "fake", "--out", disk / "run", *sets, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "could not write checkpoint step-00000004" in proc.stderr
    assert "No space left on device" in proc.stderr and "step-00000002 is intact" in proc.stderr
    assert not list((disk / "run" / "checkpoints").glob(".tmp-*"))
    assert runs.latest_checkpoint(disk / "run").name == "step-00000002"
    assert runs.verify_checkpoint(disk / "run" / "checkpoints" / "step-00000002") is None


# --------------------------------------------------------------------------------------------
# SIGKILL at random moments, many checkpoint writes
# --------------------------------------------------------------------------------------------
def test_sigkill_at_random_moments_during_checkpoint_writes_resumes_exactly(tmp_path):
    """Checkpoint every step, so most of the time is spent writing checkpoints; kill the process
    at random moments, resume each time; the final weights equal the uninterrupted run's."""
    steps = 40
    extra = dict(ckpt_every=1, log_every=1, sample_every=1000)
    full = train(_cfg(tmp_path, "full", steps=steps, **extra))
    sets = _sets(tiny_overrides("vae") + fast_train_overrides(steps, **extra))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    cut = tmp_path / "cut"
    args = ["train", "vae", "--data", "fake", "--out", str(cut), *sets]
    kills = 0
    # five kills at random moments (each one a fresh process, ~2 s of start-up, so five not
    # twelve); the final resume below finishes the run
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "genae", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # wait until this process has written a checkpoint of its own, then a random moment more
        start = max(_steps(cut), default=0)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and max(_steps(cut), default=0) <= start:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL), err
        if proc.returncode == 0:
            break
        args = ["resume", str(cut)]
    assert kills >= 3, "the run finished before it could be killed a few times"
    if max(_steps(cut)) < steps:
        genae("resume", cut)
    assert _same(_weights(full, steps), _weights(cut, steps))
    assert [r["step"] for r in runs.read_metrics(cut / "metrics.jsonl")] == list(range(1, steps + 1))


# --------------------------------------------------------------------------------------------
# 3. Data is what was asked, and the run records it
# --------------------------------------------------------------------------------------------
def test_partial_data_dir_stops_before_a_run_exists_and_changed_data_is_named(tmp_path, monkeypatch):
    from test_data import write_mnist_dir

    data = tmp_path / "mnist"
    write_mnist_dir(data, n_train=40, n_test=10)
    (tmp_path / "cache" / "data" / "mnist").mkdir(parents=True)
    write_mnist_dir(tmp_path / "cache" / "data" / "mnist", n_train=60, n_test=10, seed=1)
    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))  # a complete MNIST the run must not use
    sets = _sets(tiny_overrides("vae") + fast_train_overrides(4) + ["data.download=False"])
    partial = tmp_path / "partial"
    shutil.copytree(data, partial)
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    proc = genae("train", "vae", "--data", "mnist", "--data-dir", partial, "--out", tmp_path / "p", *sets, check=False)
    assert proc.returncode == 2 and str(partial) in proc.stderr and "train-labels-idx1-ubyte" in proc.stderr
    assert not (tmp_path / "p").exists()

    run = tmp_path / "run"
    genae("train", "vae", "--data", "mnist", "--data-dir", data, "--out", run, *sets)
    record = json.loads((run / "data.json").read_text())
    images = str((data / "train-images-idx3-ubyte.gz").resolve())
    assert len(record["train"]["files"]) == 2 and images in {str(Path(p).resolve()) for p in record["train"]["files"]}
    write_mnist_dir(data, n_train=40, n_test=10, seed=2)  # same shapes, other pixels
    proc = genae("resume", run, "--steps", 6)
    assert "the data differs" in proc.stderr and "train-images-idx3-ubyte" in proc.stderr
    proc = genae("eval", run, "--metrics", "recon-mse")
    assert "the data differs" in proc.stderr and "t10k-images-idx3-ubyte" in proc.stderr


def test_two_real_resumes_at_once_one_is_refused(tmp_path):
    """Two `genae resume RUN` processes at once: the first trains, the second is refused naming
    the first's PID; the first, stopped with SIGTERM, checkpoints; every step is logged once."""
    run = train(_cfg(tmp_path, steps=2, ckpt_every=1000, log_every=1))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genae", "resume", str(run), "--steps", "1000000"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / ".lock").read_text().strip() == str(first.pid):
        time.sleep(0.01)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first writer finished before the second started"
    first.send_signal(signal.SIGTERM)
    first_err = first.communicate(timeout=120)[1]
    assert first.returncode == 130 and "checkpoint written" in first_err, first_err
    assert second.returncode == 2 and f"PID {first.pid}" in second.stderr
    steps = [r["step"] for r in runs.read_metrics(run / "metrics.jsonl")]
    last = runs.checkpoint_step(runs.latest_checkpoint(run))
    assert steps == list(range(1, last + 1)) and last > 2


def test_legacy_defaults_apply_to_the_methods_that_have_the_key():
    """Issue 39's new defaults (VAT × β for the IMAE family, fresh InfoGAN codes for G's step) keep
    an older run's behaviour on resume: a config without the key gets the old value, only for the
    methods that have it; a config that names it keeps what it says."""
    old = runs._with_legacy_defaults
    imae = old({"method": "imae", "model": {"beta": 4.0}, "train": {}})
    assert imae["model"]["vat_scale"] == "fixed" and imae["train"]["flush_denormal"] is False
    assert old({"method": "infogan", "model": {}, "train": {}})["model"]["fresh_codes"] is False
    assert "vat_scale" not in old({"method": "vae", "model": {}, "train": {}})["model"]
    assert "fresh_codes" not in old({"method": "imae", "model": {}, "train": {}})["model"]
    assert old({"method": "jointvae", "model": {"vat_scale": "beta"}, "train": {}})["model"]["vat_scale"] == "beta"
