"""The `genae` command end to end on `fake` data, in subprocesses (as a user runs it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import fast_train_overrides, tiny_overrides

SRC = str(Path(__file__).resolve().parents[1] / "src")


def genae(*args, check=True, **kw):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "genae", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"genae {args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def test_methods_config_and_data_list():
    out = genae("methods").stdout
    for name in ("ae", "vae", "beta-vae", "wae-gan", "aae"):
        assert name in out
    cfg = yaml.safe_load(genae("config", "beta-vae").stdout)
    assert cfg["method"] == "beta-vae" and cfg["model"]["beta"] == 4.0 and "steps" in cfg["train"]
    listing = genae("data", "list").stdout
    for name in ("mnist", "fashion-mnist", "cifar10", "synthetic", "transformed-mnist", "fake"):
        assert name in listing


def test_train_sample_resume(tmp_path):
    run = tmp_path / "run"
    genae("train", "vae", "--data", "fake", "--out", run, *_sets(tiny_overrides("vae") + fast_train_overrides(4)))
    assert (run / "samples" / "samples_00000004.png").is_file()
    out = tmp_path / "grid.png"
    genae("sample", run, "--n", 9, "--out", out)
    assert out.stat().st_size > 0
    genae("resume", run)  # already finished: resumes at the end and stops at once


@pytest.mark.parametrize("args, needle", [
    (["train", "vae", "--data", "fake", "--set", "model.colour=1"], "model.colour"),
    (["train", "vae", "--data", "fake", "--set", "train.steps=-1"], "train.steps"),
    (["train", "vea", "--data", "fake"], "choose one of"),
    (["train", "vae", "--data", "nosuchdata"], "fashion-mnist"),
    (["train", "vae", "--data", "mnist", "--data-dir", "/nonexistent", "--set", "data.download=False"],
     "/nonexistent"),
    (["resume", "/nonexistent/run"], "not a genae run"),
    (["sample", "/nonexistent/run", "--out", "x.png"], "not a genae run"),
])
def test_user_errors_exit_nonzero_with_one_clear_line(tmp_path, args, needle):
    proc = genae(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """A run killed with SIGKILL mid-training resumes to the same final weights."""
    sets = _sets(tiny_overrides("vae") + fast_train_overrides(60, ckpt_every=10, log_every=10, sample_every=1000))
    genae("train", "vae", "--data", "fake", "--out", tmp_path / "full", *sets)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "genae", "train", "vae", "--data", "fake",
                             "--out", str(tmp_path / "cut"), *sets, "--set", "train.ckpt_every=10"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "cut" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.exists() and latest.read_text() >= "step-00000020"):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest.read_text() < "step-00000060", "the run finished before it could be killed"
    genae("resume", tmp_path / "cut")
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step-00000060" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoints" / "step-00000060" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_json_and_report(tmp_path):
    """`genae eval --json` prints exactly one JSON object; eval.json and report.html are written."""
    import json

    run = tmp_path / "run"
    genae("train", "vae", "--data", "fake", "--out", run, *_sets(tiny_overrides("vae") + fast_train_overrides(4)))
    names = "recon-mse,sharpness,knn-acc,active-dims,mig"
    proc = genae("eval", run, "--metrics", names, "--n-samples", 64, "--json")
    results = json.loads(proc.stdout)  # the whole stdout is one JSON object
    assert list(results) == names.split(",")
    assert 0 <= results["recon-mse"]["value"] <= 1 and results["recon-mse"]["split"] == "test"
    assert "factors" in results["mig"]["skipped"]  # does not apply: said, not failed
    saved = json.loads((run / "eval.json").read_text())
    assert saved["step"] == 4 and set(saved["metrics"]) == set(names.split(","))
    table = genae("eval", run, "--metrics", "nac").stdout
    assert "nac" in table and "written to" in table
    assert set(json.loads((run / "eval.json").read_text())["metrics"]) == {*names.split(","), "nac"}
    # --step: a kept earlier checkpoint, into its own file; eval.json stays the latest's
    early = json.loads(genae("eval", run, "--metrics", "recon-mse", "--step", 2, "--json").stdout)
    record = json.loads((run / "eval-step-00000002.json").read_text())
    assert record["step"] == 2 and record["metrics"]["recon-mse"]["value"] == early["recon-mse"]["value"]
    assert early["recon-mse"]["value"] != results["recon-mse"]["value"]  # other weights
    assert json.loads((run / "eval.json").read_text())["step"] == 4
    missing = genae("eval", run, "--metrics", "recon-mse", "--step", 3, check=False)
    assert missing.returncode == 2 and "no checkpoint at step 3" in missing.stderr
    assert "step-00000002" in missing.stderr and "Traceback" not in missing.stderr
    bad = genae("eval", run, "--metrics", "fid,fidd", check=False)
    assert bad.returncode == 2 and "fidd" in bad.stderr and "valid:" in bad.stderr
    genae("report", run)
    page = (run / "report.html").read_text()
    assert "data:image/png;base64," in page and "recon-mse" in page


def test_demo_end_to_end(tmp_path):
    """`genae demo`'s machinery (two runs at a time, one protocol, the comparison page) on `fake`
    data with tiny networks instead of MNIST and the four full recipes."""
    from genae.demo import run_demo
    from genae.metrics.domain import DomainRecipe

    runs = [(m, tiny_overrides(m) + [f"train.steps=4", "train.batch_size=16", "train.sample_every=4"])
            for m in ("vae", "ae")]
    page = run_demo(tmp_path / "demo", runs=runs, data="fake", metrics=["recon-mse", "knn-acc", "fid"],
                    n_samples=64, recipe=DomainRecipe(width=4, feature_dim=16, steps=40, batch_size=32))
    html = page.read_text()
    assert "recon-mse" in html and "knn-acc" in html and "vae" in html and "data:image/png;base64," in html
    for m in ("vae", "ae"):
        record = yaml.safe_load((tmp_path / "demo" / "runs" / m / "eval.json").read_text())
        assert record["metrics"]["recon-mse"]["step"] == 4 and 0 <= record["metrics"]["knn-acc"]["value"] <= 1
    assert "skipped" in yaml.safe_load((tmp_path / "demo" / "runs" / "ae" / "eval.json").read_text())["metrics"]["fid"]
