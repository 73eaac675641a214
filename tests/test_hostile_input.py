"""Hostile and wrong input (issue 42, the reading side): every reproduction of the attack matrix is
a test here. Each one failed on the main before this file existed, with a traceback, a silently
wrong result, or gigabytes of memory.

- user data is checked at the door: NaN never becomes a black pixel, empty, ragged, object and
  dict-yielding data are one clear error each;
- every file read back from a run or a sweep is parsed with bounded size and alias expansion and
  checked against its schema (``genae.schema``): a wrong one is named with its field, never a
  traceback;
- every ``genae`` command answers bad input with one line and a non-zero exit (a walk over the
  parser's sub-commands keeps that true for commands added later);
- property-based fuzzing of the run-file readers and of the ``--set`` parser.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import os
import pickle
import random
import shutil
import signal
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import genae
from conftest import fast_train_overrides, tiny_overrides
from genae import runs, schema
from genae.cli import _parser, main
from genae.config import build_config, parse_override
from genae.errors import ConfigError, GenaeError, short_repr
from genae.training import train


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE run on `fake` with checkpoints at steps 2 and 4 and a hand-written eval.json
    (trained once; tests that change files work on a copy: ``run``)."""
    out = tmp_path_factory.mktemp("hostile") / "run"
    train(build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(4), out=str(out)))
    (out / "eval.json").write_text(json.dumps({"run": str(out), "method": "vae", "data": "fake", "step": 4, "metrics": {
        "recon-mse": {"value": 0.1, "sse_per_example": 78.4, "n": 64, "split": "test", "step": 4}}}))
    return out


@pytest.fixture
def run(trained, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


def cli(capsys, *args) -> tuple[int, str, str]:
    """``genae ARGS`` in this process (what ``python -m genae`` runs): (exit code, stdout, stderr).
    An exception that escapes ``main`` fails the test: that is the traceback a user would see."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle=None):
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    if needle is not None:
        assert needle in err, err


def rewrite_checkpoint_file(ckpt: Path, name: str, data: bytes) -> None:
    """Replace ``name`` in a checkpoint and its manifest entry, as a crafted checkpoint would (so
    the manifest checks and the file itself is what is read)."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / runs.MANIFEST).read_text())
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / runs.MANIFEST).write_text(json.dumps(manifest))


def _attack_matrix():
    """benchmarks/attack_matrix.py, whose hostile files (a YAML bomb, a PNG bomb's header) these
    tests share: one definition of each attack for the matrix and the regression tests."""
    spec = importlib.util.spec_from_file_location(
        "attack_matrix", Path(__file__).resolve().parents[1] / "benchmarks" / "attack_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MATRIX = _attack_matrix()
bomb_yaml, png_header = _MATRIX.bomb_yaml, _MATRIX.png_header


TRAIN = dict(batch_size=8, progress=False, tensorboard=False, device="cpu", log_every=1, ckpt_every=1000)


# --------------------------------------------------------------------------------------------
# 1. User data at the door (genae.train / genae.evaluate)
# --------------------------------------------------------------------------------------------
def test_nan_pixels_are_refused_never_trained_as_black(tmp_path):
    x = torch.rand(16, 1, 8, 8)
    x[3, 0, 2, 2] = float("nan")
    for data, needle in ((x, "1 of 1,024 values are NaN or infinite (the first in example 3)"),
                         (torch.full((16, 1, 8, 8), float("nan")), "NaN or infinite"),
                         (torch.rand(16, 1, 8, 8).index_fill_(0, torch.tensor([5]), float("inf")), "example 5"),
                         (np.where(np.eye(16, 4) > 0, np.nan, 0.5), "NaN or infinite")):  # vectors
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            genae.train("vae", data=data, steps=2, out=tmp_path / "r", train=TRAIN)
        assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="NaN"):  # a clean training set, a NaN test set
        genae.train("vae", data=torch.rand(16, 1, 8, 8), test=x, steps=2, out=tmp_path / "r", train=TRAIN)


def test_evaluate_refuses_nan_images_instead_of_scoring_them(trained):
    method = genae.load_run(trained)
    x = torch.rand(20, 1, 28, 28)
    x[0] = float("nan")
    with pytest.raises(ConfigError, match="NaN or infinite"):
        genae.evaluate(method, ["recon-mse"], data=x)
    with pytest.raises(ConfigError, match="NaN or infinite"):
        genae.evaluate(trained, ["recon-mse"], data=x)


class _Items(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([torch.rand(1, 8, 8)])


@pytest.mark.parametrize("data, labels, needle", [
    (torch.empty(0, 1, 8, 8), None, "no examples"),
    (torch.tensor(0.5), None, "got shape ()"),
    (np.empty((0, 4), dtype=np.float32), None, "no examples"),
    ([], None, "no examples"),
    (torch.rand(4, 1, 0, 8), None, "holds no values"),
    ([[0.1, 0.2], [0.3]], None, "ragged"),
    (np.array([object(), object()]), None, "objects"),
    (np.array([["a", "b"], ["c", "d"]]), None, "not numbers"),
    (torch.rand(4, 3) + 1j, None, "complex"),
    (torch.rand(4, 1, 8, 8).to_sparse(), None, "dense"),
    (torch.rand(8, 4), [0, 1, 0.5, 1, 0, 1, 0, 1], "labels must be integers"),
    (torch.rand(8, 4), [["x"]] * 8, "not numbers"),
    (_Items([{"image": torch.rand(1, 8, 8), "label": 1}] * 4), None, "yields dicts (keys image, label)"),
    (_Items([(torch.rand(1, 8, 8), 1, "extra")] * 4), None, "tuple of 3 values"),
    (_Items([torch.rand(1, 8, 8), torch.rand(1, 9, 9)]), None, "differ in shape"),
    (_Items([(torch.rand(1, 8, 8), 1), torch.rand(1, 8, 8)]), None, "every item must be alike"),
    (_Items([(torch.rand(1, 8, 8), 0.5)] * 4), None, "must be one integer"),
    (_Items([(torch.rand(1, 8, 8), "cat")] * 4), None, "not numbers"),
    (_Items([]), None, "empty"),
    (_Stream(), None, "IterableDataset"),
])
def test_bad_user_data_is_one_clear_error(tmp_path, data, labels, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        genae.train("vae", data=data, labels=labels, steps=2, out=tmp_path / "r", train=TRAIN)
    assert not (tmp_path / "r").exists()


def test_evaluate_and_load_run_arguments_are_checked_first(trained):
    for kwargs, needle in ((dict(n_samples=0), "n_samples=0"), (dict(n_samples=2.5), "n_samples=2.5"),
                           (dict(split="val"), "split='val'"), (dict(backbone="clip"), "backbone='clip'"),
                           (dict(device="tpu"), "device='tpu' is not a device")):
        with pytest.raises(GenaeError, match=needle):
            genae.evaluate(trained, ["recon-mse"], **kwargs)
    for device in ("tpu", "meta"):  # `meta` is a torch device, but none to run a model on
        with pytest.raises(GenaeError, match=f"device='{device}' is not a device; use cpu"):
            genae.load_run(trained, device=device)
    assert genae.load_run(trained, device="auto").device.type in ("cpu", "cuda")


def test_evaluate_refuses_images_of_another_size_naming_both(trained):
    method = genae.load_run(trained)
    with pytest.raises(ConfigError, match=r"images of shape \(1, 32, 32\), but the method was built for "
                                          r"images of shape \(1, 28, 28\)"):
        genae.evaluate(method, ["recon-mse"], data=torch.rand(10, 1, 32, 32))
    with pytest.raises(ConfigError, match="vectors of shape"):
        genae.evaluate(trained, ["recon-mse"], data=torch.rand(10, 784))


# --------------------------------------------------------------------------------------------
# 2. Bounded parsing: alias bombs, depth, size
# --------------------------------------------------------------------------------------------
def test_billion_laughs_is_refused_fast_in_bounded_memory():
    text = bomb_yaml()
    assert len(text) < 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="expand to more than 100,000 nodes"):
            schema.parse_yaml(text, "bomb.yaml")
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0 and peak < 20e6, (seconds, peak)  # was ~50 s and a MemoryError, or 20 GB
    for text, needle in (("a: &a [1, *a]\n", "recursive"), ("[" * 200 + "]" * 200, "nests"),
                         ("x: " + "9" * 5000 + "\n", "not valid YAML"), ("x: 1\n" * 300_000, "larger than"),
                         ("\x1f", "not valid YAML")):  # a control character: refused by PyYAML's reader
        with pytest.raises(ConfigError, match=needle):
            schema.parse_yaml(text, "f.yaml")
    # aliases in moderation are YAML like any other
    assert schema.parse_yaml("a: &x [1, 2]\nb: *x\n", "ok.yaml") == {"a": [1, 2], "b": [1, 2]}


def test_alias_bomb_as_a_config_or_in_a_run_is_one_line(run, tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(bomb_yaml() + "method: vae\nmodel: {hidden: *a8}\n")
    code, _, err = cli(capsys, "train", "--config", bomb, "--data", "fake", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "bomb.yaml is refused: its aliases expand")
    assert not (tmp_path / "x").exists()
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(bomb_yaml() + cfg.replace("method: vae", "method: *a8"))
    for args in (["report", run], ["sample", run, "--out", tmp_path / "s.png"], ["resume", run],
                 ["compare", run]):
        code, _, err = cli(capsys, *args)
        assert_one_line_error(code, err, "config.yaml is refused")
    assert not (run / "report.html").exists()


def test_large_and_deep_json_files_are_refused_by_name(run, capsys):
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    assert runs.read_run_info(run) == {}
    assert "run.json is nested too deeply" in capsys.readouterr().err
    with open(run / "eval.json", "wb") as f:
        f.truncate(schema.MAX_JSON_BYTES + 1)
    with pytest.raises(GenaeError, match="larger than"):
        runs.read_eval_record(run / "eval.json")


def test_short_repr_never_builds_a_huge_repr():
    huge = [list(range(10 ** 6))] * 10 ** 3  # a repr of ~7 GB
    assert len(short_repr(huge)) <= 60
    assert short_repr(10 ** 5000) == "<a 16610-bit integer>"  # str() of it raises
    assert short_repr("x" * 10 ** 7).startswith("'xxx") and len(short_repr("x" * 10 ** 7)) <= 60
    assert short_repr((1,)) == "(1,)" and short_repr({"a": [1, None]}) == "{'a': [1, None]}"
    assert short_repr(torch.zeros(3, 2)) == "<Tensor of shape (3, 2), torch.float32>"
    with pytest.raises(ConfigError) as e:
        build_config("vae", "fake", overrides=["model.hidden=" + repr(list(range(100_000)))])
    assert len(str(e.value)) < 200


# --------------------------------------------------------------------------------------------
# 3. Run and sweep files of the wrong types: named with their field, never a traceback
# --------------------------------------------------------------------------------------------
def test_config_yaml_with_a_method_list(run, tmp_path, capsys):
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "method": ["vae", "ae"]}))
    code, _, err = cli(capsys, "resume", run)
    assert_one_line_error(code, err, "config.yaml is damaged or was edited: field method: expected a string, "
                                     "got ['vae', 'ae']")
    for section, needle in (("data_info", "field data_info.shape: expected 3 sizes for image data"),
                            ("train", "field train: expected a mapping or null, got 'fast'")):
        edited = copy.deepcopy(cfg)
        edited["data_info"]["shape"] = [784]
        if section == "train":
            edited = {**cfg, "train": "fast"}
        (run / "config.yaml").write_text(yaml.safe_dump(edited))
        code, _, err = cli(capsys, "sample", run, "--out", tmp_path / "s.png")
        assert_one_line_error(code, err, needle)
    given = tmp_path / "given.yaml"
    given.write_text("method: [vae, ae]\n")
    code, _, err = cli(capsys, "train", "--config", given, "--data", "fake", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "unknown method ['vae', 'ae']")
    given.write_text("method: vae\nmodel: fast\n")
    code, _, err = cli(capsys, "train", "--config", given, "--data", "fake", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "`model` must be a mapping")
    assert not (tmp_path / "x").exists()


def test_trainer_json_of_the_wrong_types(run, capsys):
    ckpt = runs.checkpoint_dirs(run)[-1]
    state = json.loads((ckpt / runs.STATE_JSON).read_text())
    config = (run / "config.yaml").read_bytes()
    for edit, needle in ((lambda s: {**s, "step": "4"}, "field step: expected an integer >= 0, got '4'"),
                         (lambda s: [], "the file: expected a mapping with step"),
                         (lambda s: {**s, "rng": {**s["rng"], "python": {"$tuple": [3, [1, 2], None]}}},
                          "field rng.python[1]: expected a list of 625")):
        rewrite_checkpoint_file(ckpt, runs.STATE_JSON, json.dumps(edit(copy.deepcopy(state))).encode())
        code, _, err = cli(capsys, "resume", run)
        assert_one_line_error(code, err, needle)
        assert "trainer.json" in err
        # with a change to write (train.steps), still refused before anything is written
        code, _, err = cli(capsys, "resume", run, "--steps", "6")
        assert code == 2 and "Traceback" not in err and needle in err.strip().splitlines()[-1], err
        assert (run / "config.yaml").read_bytes() == config
    # the right types, but not this run's players: refused when the state is restored
    other = {**state, "optimizers": {"other": state["optimizers"]["vae"]}, "schedules": {"other": state["schedules"]["vae"]}}
    rewrite_checkpoint_file(ckpt, runs.STATE_JSON, json.dumps(other).encode())
    code, _, err = cli(capsys, "resume", run, "--steps", "6")
    assert code == 2 and "Traceback" not in err, err
    assert "trainer.json) has optimizers of ['other'], but this run's players are ['vae']" in err.strip().splitlines()[-1]
    assert [runs.checkpoint_step(p) for p in runs.checkpoint_dirs(run)] == [2, 4]  # no checkpoint written


def test_checkpoint_manifest_of_the_wrong_types_is_skipped_by_name(run, tmp_path, capsys):
    newest = runs.checkpoint_dirs(run)[-1]
    manifest = json.loads((newest / runs.MANIFEST).read_text())
    manifest["files"]["model.safetensors"]["size"] = "12"
    (newest / runs.MANIFEST).write_text(json.dumps(manifest))
    code, out, err = cli(capsys, "sample", run, "--n", 4, "--out", tmp_path / "s.png")
    assert code == 0 and "Traceback" not in err
    assert "manifest.json is damaged (field files.model.safetensors.size: expected an integer >= 0, got '12')" in err
    assert "using step-00000002" in err


def test_informational_files_of_the_wrong_types_are_named_and_left_out(run, capsys):
    """run.json, eval.json and data.json only inform (the report, compare, the data check): a wrong
    one is named with its field on stderr or in compare's notes, and the command goes on."""
    (run / "run.json").write_text(json.dumps({"method": "vae", "parameters": {"vae": "many"}}))
    (run / "eval.json").write_text(json.dumps({"step": 4, "metrics": [1, 2]}))
    (run / "data.json").write_text(json.dumps({"train": {"files": ["a", "b"]}}))
    code, out, err = cli(capsys, "report", run)
    assert code == 0 and "Traceback" not in err, err
    assert "run.json is damaged or was edited: field parameters.vae: expected an integer >= 0, got 'many'" in err
    assert "eval.json unreadable" in (run / "report.html").read_text()
    code, out, err = cli(capsys, "compare", run)
    assert code == 0 and "eval.json is damaged or was edited: field metrics: expected a mapping" in out
    assert "data.json is damaged or was edited: field train.files: expected a mapping" in out
    code, _, err = cli(capsys, "resume", run)  # the run is finished: it checks its data and stops
    assert code == 0 and "data.json is damaged or was edited: field train.files" in err, err


def test_data_json_differences_are_listed_within_bounds(run, capsys):
    """A data.json of the right types but huge (a 1 MB source, 10,000 recorded files): the
    warnings about the data differing stay a few short lines."""
    from genae.data import load_dataset

    cfg, _ = runs.run_config(run)
    (run / "data.json").write_text(json.dumps({"train": {"source": "s" * 10 ** 6, "files": {
        f"/data/{'d' * 1000}/{i}.png": "0" * 64 for i in range(10_000)}}}))
    lines = runs.check_data_record(run, {"train": load_dataset(cfg.data, "train")})
    assert 2 <= len(lines) <= 22 and lines[-1].endswith("and 9,980 more file(s) differ"), lines[-1]
    assert max(map(len, lines)) < 600
    assert len(capsys.readouterr().err) < 20_000


def test_sweep_manifest_of_the_wrong_types(run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(run, sweep / "runs" / "p0")
    (sweep / "manifest.json").write_text(json.dumps({"method": "vae", "set": [], "grid": {}, "list": [],
                                                     "seeds": [0], "points": "all"}))
    code, _, err = cli(capsys, "sweep", "--resume", sweep)
    assert_one_line_error(code, err, "manifest.json is damaged or was edited: field points: expected a list")
    code, out, err = cli(capsys, "compare", sweep)  # the manifest is named, its runs/ are read
    assert code == 0 and "field points" in out and "runs/ folder was read instead" in out
    (sweep / "manifest.json").write_text(json.dumps({"method": "vae", "set": [], "grid": {"model.hidden": []},
                                                     "list": [], "seeds": [0], "points": []}))
    code, _, err = cli(capsys, "sweep", "--resume", sweep)
    assert_one_line_error(code, err, "field grid.model.hidden: expected a non-empty list")


def test_sweep_file_of_the_wrong_types(tmp_path, capsys):
    f = tmp_path / "sweep.yaml"
    for text, needle in (("method: vae\njobs: many\n", "field jobs: expected an integer >= 1 or null"),
                         ("method: vae\nset: 5\n", "field set"),
                         ("method: vae\nsplit: val\n", "field split: expected one of test, train")):
        f.write_text(text)
        code, _, err = cli(capsys, "sweep", "--config", f, "--data", "fake", "--out", tmp_path / "sw")
        assert_one_line_error(code, err, needle)
    assert not (tmp_path / "sw").exists()


# --------------------------------------------------------------------------------------------
# 4. The command line: one line with the fix
# --------------------------------------------------------------------------------------------
def test_set_values_are_checked_before_the_run_directory_exists(tmp_path, capsys):
    for item, needle in (("model.betas=(0.5,2.0)", "model.betas=(0.5, 2.0): Adam's betas"),
                         ("model.lr=-1e-3", "model.lr=-0.001: a learning rate must be"),
                         ("model.lr=1e999", "model.lr=inf: a learning rate must be a finite number"),
                         ("model.lr=0", "model.lr=0.0")):
        code, _, err = cli(capsys, "train", "vae", "--data", "fake", "--out", tmp_path / "r", "--set", item)
        assert_one_line_error(code, err, needle)
        assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="encoder_betas"):
        build_config("dmwgan", "fake", overrides=["model.encoder_betas=(1.0, 0.9)"])


def test_out_must_be_a_png_in_an_existing_folder(run, tmp_path, capsys):
    (tmp_path / "dir.png").mkdir()
    for cmd in (["sample", run], ["imagine", run], ["manifold", run, "--image", tmp_path / "i.png"]):
        for out, needle in ((tmp_path / "x.txt", "give a file name ending in .png"),
                            (tmp_path / "noext", "ending in .png"),
                            (tmp_path / "dir.png", "is a directory"),
                            (tmp_path / "missing" / "x.png", "does not exist")):
            code, _, err = cli(capsys, *cmd, "--out", out)
            assert_one_line_error(code, err, needle)
    code, _, err = cli(capsys, "sample", run, "--out", tmp_path / "v.safetensors")
    assert_one_line_error(code, err, "this run's samples are images, written as .png")
    assert not list(tmp_path.glob("x.txt")) and not (tmp_path / "noext").exists()


def test_manifold_steps_restarts_and_mu_must_be_sensible(run, tmp_path, capsys):
    for flag, value in (("--steps", 0), ("--restarts", -1), ("--mu", "nan"), ("--mu", -1)):
        code, _, err = cli(capsys, "manifold", run, "--image", tmp_path / "i.png", "--out", tmp_path / "m.png",
                           flag, value)
        assert_one_line_error(code, err, flag)


def test_a_huge_image_is_refused_from_its_header(run, tmp_path, capsys):
    from genae.viz.grids import load_image

    for w, h in ((20000, 20000), (8000, 8000)):  # over Pillow's bomb limit, and over ours only
        big = tmp_path / f"big{w}.png"
        big.write_bytes(png_header(w, h))
        with pytest.raises(ValueError, match="pixels"):
            load_image(big, (1, 28, 28))
        code, _, err = cli(capsys, "imagine", run, "--images", big, "--out", tmp_path / "i.png")
        assert_one_line_error(code, err, "pixels")


def test_a_second_ctrl_c_during_a_checkpoint_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    real, calls = runs.write_checkpoint, []

    def interrupted(run_dir, step, *args, **kw):
        calls.append(step)
        if len(calls) == 2:  # the step-4 checkpoint: half written when Ctrl-C comes twice
            (Path(run_dir) / "checkpoints" / f".tmp-{runs.checkpoint_name(step)}-{os.getpid()}").mkdir()
            os.kill(os.getpid(), signal.SIGINT)  # the first asks for a checkpoint and a stop
            os.kill(os.getpid(), signal.SIGINT)  # the second stops at once (KeyboardInterrupt)
            time.sleep(5)
        return real(run_dir, step, *args, **kw)

    monkeypatch.setattr(runs, "write_checkpoint", interrupted)
    run = tmp_path / "run"
    sets = [a for s in tiny_overrides("vae") + fast_train_overrides(6) for a in ("--set", s)]
    code, _, err = cli(capsys, "train", "vae", "--data", "fake", "--out", run, *sets)
    assert code == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"continue with `genae resume {run}`" in err
    monkeypatch.setattr(runs, "write_checkpoint", real)
    code, _, err = cli(capsys, "resume", run)
    assert code == 0, err
    assert [runs.checkpoint_step(p) for p in runs.checkpoint_dirs(run)] == [4, 6]
    assert not list((run / "checkpoints").glob(".tmp-*"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the crafted file
def test_inception_weights_that_are_a_pickle_are_refused_and_never_run(tmp_path, monkeypatch):
    from genae.metrics.inception import load_fid_inception

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    weights = tmp_path / "weights.pth"
    weights.write_bytes(pickle.dumps({"conv.weight": Evil()}))
    monkeypatch.setenv("GENAE_INCEPTION_WEIGHTS", str(weights))
    with pytest.warns(RuntimeWarning, match="SHA-256"), \
            pytest.raises(ConfigError, match="is not the FID Inception weights .* it could not be read"):
        load_fid_inception(download=False)
    assert not marker.exists()
    torch.save([torch.zeros(2)], weights)  # tensors, but not a mapping of names to them
    with pytest.warns(RuntimeWarning), pytest.raises(ConfigError, match="holds a list"):
        load_fid_inception(download=False)


def test_compare_refuses_a_field_no_result_has(trained, capsys):
    code, _, err = cli(capsys, "compare", trained, "--metrics", "recon-mse.typo")
    assert_one_line_error(code, err, "--metrics recon-mse.typo: the recon-mse results have no number 'typo'")
    assert "their fields: " in err and "sse_per_example" in err
    code, out, _ = cli(capsys, "compare", trained, "--metrics", "recon-mse.sse_per_example")
    assert code == 0 and "78.40" in out


def _leaves(parser: argparse.ArgumentParser, prefix: tuple = ()) -> list[tuple]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    return [leaf for name, sub in subs[0].choices.items() for leaf in _leaves(sub, (*prefix, name))]


def test_every_command_answers_bad_input_with_one_line(run, tmp_path, capsys):
    """Each sub-command of the parser, given bad input, exits non-zero with one line on stderr and
    no traceback; a command added to the parser fails here until it has its case."""
    bomb = tmp_path / "bomb"
    shutil.copytree(run, bomb)
    (bomb / "config.yaml").write_text(bomb_yaml() + (run / "config.yaml").read_text().replace("method: vae", "method: *a8"))
    bad = {
        ("train",): (["train", "vae", "--data", "fake", "--set", "model.betas=(0.5,2.0)", "--out", tmp_path / "t"],
                     "model.betas"),
        ("resume",): (["resume", run, "--steps", 0], "--steps must be positive"),
        ("sample",): (["sample", run, "--out", tmp_path / "s.txt"], ".png"),
        ("manifold",): (["manifold", run, "--image", tmp_path / "i.png", "--out", tmp_path / "m.png", "--steps", 0],
                        "--steps"),
        ("imagine",): (["imagine", run, "--out", tmp_path / "noext"], ".png"),
        ("eval",): (["eval", run, "--n-samples", 0], "--n-samples"),
        ("report",): (["report", bomb], "is refused"),
        ("export",): (["export", tmp_path / "nowhere", "--out", tmp_path / "ex"], "does not exist"),
        ("sweep",): (["sweep", "vae", "--data", "fake", "--set", "model.betas=(0.5,2.0)", "--out", tmp_path / "sw"],
                     "model.betas"),
        ("compare",): (["compare", run, "--metrics", "recon-mse.typo"], "typo"),
        ("methods",): (["methods", "--bogus"], "unrecognized arguments: --bogus"),
        ("metrics",): (["metrics", "extra"], "unrecognized arguments: extra"),
        ("config",): (["config", "[vae, ae]"], "unknown method"),
        ("data", "list"): (["data", "list", "--bogus"], "unrecognized arguments"),
        ("data", "info"): (["data", "info", "nosuchdata"], "unknown dataset"),
        ("data", "fetch"): (["data", "fetch", "mnist", "--data-dir", tmp_path / "nowhere"], "not a directory"),
        ("demo",): (["demo", "--jobs", 0, "--out", tmp_path / "demo"], "--jobs"),
    }
    assert sorted(_leaves(_parser())) == sorted(bad)
    for leaf, (args, needle) in bad.items():
        code, _, err = cli(capsys, *args)
        assert_one_line_error(code, err, needle)
    code, _, err = cli(capsys, "sample")  # argparse's own errors are one line too
    assert_one_line_error(code, err, "the following arguments are required: run, --out (see `genae sample --help`)")
    for made in ("t", "sw", "demo", "ex"):
        assert not (tmp_path / made).exists(), made


# --------------------------------------------------------------------------------------------
# 5. Fuzzing: the readers of run files and the --set parser
# --------------------------------------------------------------------------------------------
_TEXT = st.characters(blacklist_categories=("Cs",))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(_TEXT, max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_TEXT, max_size=8), inner, max_size=4),
    max_leaves=12)
# bounded and reproducible: 100 examples each, a deadline per example, no example database
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True, database=None)


def _slots(tree, out=None):
    """The (container, key) pairs of a JSON tree where a mutation can go: every one, but only the
    first items of a long list (an RNG state's 625 numbers would otherwise take most draws)."""
    out = [] if out is None else out
    items = tree.items() if isinstance(tree, dict) else list(enumerate(tree))[:3] if isinstance(tree, list) else ()
    for k, v in items:
        out.append((tree, k))
        _slots(v, out)
    return out


@st.composite
def variants(draw, original):
    """A random JSON value, or ``original`` with one value replaced (or one key removed) at a
    random place: most of them reach past the first check, deep into the reader."""
    if draw(st.integers(0, 3)) == 0:
        return draw(JSON)
    tree = copy.deepcopy(original)
    slots = _slots(tree)
    if not slots:
        return draw(JSON)
    container, key = draw(st.sampled_from(slots))
    if isinstance(container, dict) and draw(st.booleans()):
        del container[key]
    else:
        container[key] = draw(JSON)
    return tree


@pytest.fixture(scope="module")
def fuzz_site(trained, tmp_path_factory):
    """A copy of the run, a sweep around it, and what the readers need to consume a trainer state."""
    from genae.data import load_dataset
    from genae.sweep import SweepSpec, _Sweep

    root = tmp_path_factory.mktemp("fuzz")
    run = root / "sweep" / "runs" / "p0"
    shutil.copytree(trained, run)
    spec = SweepSpec(method="vae", sets=["data.name=fake"], grid={"model.latent_dim": ["2", "3"]}, seeds=[0],
                     metrics=["recon-mse"])
    manifest = _Sweep(root / "sweep", spec, "fake", None, lambda s: None).manifest
    (root / "sweep" / "manifest.json").write_text(json.dumps(manifest, default=str))
    cfg, info = runs.run_config(run)
    return {"run": run, "sweep": root / "sweep", "cfg": cfg, "method": runs.build_method(cfg, info),
            "data": load_dataset(cfg.data, "train")}


def _consume_trainer_state(site):
    from genae.trainer import TrainingState

    run = site["run"]
    ckpt = runs.find_checkpoint(run)[0]
    if ckpt is None:  # refused by the manifest check: nothing to consume
        return
    _, state = runs.read_checkpoint(ckpt)
    rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        TrainingState(site["method"], site["data"], site["cfg"].train, torch.device("cpu")).load_state_dict(state)
    finally:
        torch.set_rng_state(rng[0]), np.random.set_state(rng[1]), random.setstate(rng[2])


def _render(run):
    from genae.viz.report import render_report

    render_report(run, figures={})


def _read_sweep(site):
    from genae import compare, sweep

    manifest = sweep.read_manifest(site["sweep"])
    sweep.format_table(manifest)
    sweep.spec_from_manifest(manifest)
    compare.compare([site["sweep"]])


READERS = {  # file (relative to the run; "SWEEP" for the sweep's manifest) -> what reads it
    "config.yaml": lambda s: (runs.run_config(s["run"]), _render(s["run"])),
    "CKPT/config.yaml": lambda s: runs.checkpoint_config(s["run"], runs.checkpoint_dirs(s["run"])[-1]),
    "CKPT/trainer.json": _consume_trainer_state,
    "CKPT/manifest.json": lambda s: (runs.find_checkpoint(s["run"]), runs.verify_checkpoint(
        runs.checkpoint_dirs(s["run"])[-1])),
    "data.json": lambda s: (runs.check_data_record(s["run"], {"train": s["data"]}), _read_sweep(s)),
    "run.json": lambda s: (runs.read_run_info(s["run"]), _render(s["run"])),
    "eval.json": lambda s: (_render(s["run"]), _read_sweep(s)),
    "SWEEP/manifest.json": _read_sweep,
}


def _path(site, name: str) -> Path:
    if name.startswith("SWEEP/"):
        return site["sweep"] / name[6:]
    if name.startswith("CKPT/"):
        return runs.checkpoint_dirs(site["run"])[-1] / name[5:]
    return site["run"] / name


@pytest.mark.parametrize("name", list(READERS))
def test_fuzz_run_file_readers_raise_only_genae_errors(fuzz_site, name):
    path = _path(fuzz_site, name)
    original_bytes = path.read_bytes()
    yaml_file = path.suffix == ".yaml"
    original = yaml.safe_load(original_bytes) if yaml_file else json.loads(original_bytes)
    manifest = path.parent / runs.MANIFEST
    manifest_bytes = manifest.read_bytes() if name == "CKPT/trainer.json" else None

    @FUZZ
    @given(variants(original))
    def check(value):
        data = (yaml.safe_dump(value) if yaml_file else json.dumps(value)).encode()
        try:
            if manifest_bytes is not None:  # a crafted checkpoint: its manifest lists the new bytes
                rewrite_checkpoint_file(path.parent, path.name, data)
            else:
                path.write_bytes(data)
            READERS[name](fuzz_site)
        except GenaeError:
            pass
        finally:
            path.write_bytes(original_bytes)
            if manifest_bytes is not None:
                manifest.write_bytes(manifest_bytes)

    check()


def _override_keys() -> list[str]:
    import dataclasses

    cfg = build_config("vae", "fake")
    return [f"{ns}.{f.name}" for ns, obj in (("model", cfg.model), ("train", cfg.train), ("data", cfg.data))
            for f in dataclasses.fields(obj)] + ["model.nope", "train", "data.", ".x", "model.lr.x"]


_VALUES = st.one_of(st.text(_TEXT, max_size=12), JSON.map(repr), JSON.map(json.dumps),
                    st.sampled_from(["(0.5,2.0)", "none", "null", "True", "1e999", "-0", "'x'", "[1,[2,[3]]]",
                                     "{1: 2}", "{[1]: 2}", "(" * 120, "9" * 5000, "b'x'", "1j", "{1, 2}"]))
_ITEMS = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(_override_keys()), _VALUES),
                   st.text(_TEXT, max_size=20))


@FUZZ
@given(st.lists(_ITEMS, max_size=3))
def test_fuzz_set_overrides_raise_only_config_errors(items):
    try:
        for item in items:
            parse_override(item)
        build_config("vae", "fake", overrides=items)
    except ConfigError:
        pass


@FUZZ
@given(st.one_of(st.text(_TEXT, max_size=200), JSON.map(yaml.safe_dump),
                 st.builds(lambda a, b: a + "\n" + b, st.sampled_from([bomb_yaml(), "a: &a [1]\n"]),
                           st.text(_TEXT, max_size=40))))
def test_fuzz_yaml_parsing_raises_only_config_errors(text):
    try:
        schema.parse_yaml(text, "fuzz.yaml")
    except ConfigError:
        pass
