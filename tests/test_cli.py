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
    # train.amp=none: the word the help names is taken as typed (not turned into null)
    genae("train", "vae", "--data", "fake", "--out", run,
          *_sets(tiny_overrides("vae") + fast_train_overrides(4) + ["train.amp=none"]))
    assert (run / "samples" / "samples_00000004.png").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] == "none"
    out = tmp_path / "grid.png"
    genae("sample", run, "--n", 9, "--out", out)
    assert out.stat().st_size > 0
    proc = genae("sample", run, "--n", 9, "--out", tmp_path / "k.png", "--class", 0, check=False)
    assert proc.returncode == 2 and "VAE samples unconditionally" in proc.stderr
    assert not (tmp_path / "k.png").exists()
    genae("resume", run)  # already finished: resumes at the end and stops at once


def test_sample_class_fixes_what_the_method_samples_by(tmp_path):
    """--class K on InfoGAN fixes a value of its discrete code (not a class label): K in 0..2 of its
    3 categories works and gives other images than another K; K = 3 names what K fixes and the
    range. The help says what K fixes for each kind of method."""
    from PIL import Image

    from genae.methods.base import SAMPLE_Y

    run = tmp_path / "run"
    genae("train", "infogan", "--data", "fake", "--out", run,
          *_sets(tiny_overrides("infogan") + fast_train_overrides(2)))
    grids = []
    for k in (0, 2):
        genae("sample", run, "--n", 4, "--class", k, "--out", tmp_path / f"k{k}.png")
        grids.append(Image.open(tmp_path / f"k{k}.png").tobytes())
    assert grids[0] != grids[1]
    proc = genae("sample", run, "--n", 4, "--class", 3, "--out", tmp_path / "k3.png", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"K fixes {SAMPLE_Y['code']} (code); choose 0..2" in proc.stderr
    help_text = " ".join(genae("sample", "--help").stdout.split())
    for kind, what in SAMPLE_Y.items():
        assert f"{kind}: {what}" in help_text


def test_a_failed_set_up_leaves_no_run_directory_and_the_retry_works(tmp_path):
    """lsr-gan whose two stages do not fit train.steps fails before anything is written; the
    retry with a good config into the same --out trains."""
    run = tmp_path / "lsr"
    model = tiny_overrides("lsr-gan")
    bad = genae("train", "lsr-gan", "--data", "fake", "--out", run,
                *_sets(model + ["model.vae_steps=10"] + fast_train_overrides(5)), check=False)
    assert bad.returncode == 2 and "train.steps=5" in bad.stderr and "Traceback" not in bad.stderr
    assert not run.exists()
    genae("train", "lsr-gan", "--data", "fake", "--out", run,
          *_sets(model + ["model.vae_steps=2"] + fast_train_overrides(4)))
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000004"


@pytest.mark.parametrize("args, needle", [
    (["train", "vae", "--data", "fake", "--set", "model.colour=1"], "model.colour"),
    (["train", "vae", "--data", "fake", "--set", "train.steps=-1"], "train.steps"),
    (["train", "vea", "--data", "fake"], "choose one of"),
    (["config", "wgan-pg"], "unknown method 'wgan-pg' (did you mean 'wgan-gp'?)"),
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
    proc = genae("eval", run, "--metrics", names, "--n-samples", 64, "--json", check=False)
    results = json.loads(proc.stdout)  # the whole stdout is one JSON object
    assert list(results) == names.split(",")
    assert 0 <= results["recon-mse"]["value"] <= 1 and results["recon-mse"]["split"] == "test"
    assert "factors" in results["mig"]["skipped"]  # does not apply: said, not computed
    saved = json.loads((run / "eval.json").read_text())
    assert saved["step"] == 4 and set(saved["metrics"]) == set(names.split(","))
    # mig was asked for by name and skipped: everything is printed and written, then exit 5 and one line
    assert proc.returncode == 5 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "mig skipped" in proc.stderr and "--allow-skipped" in proc.stderr and "recon-mse" not in proc.stderr
    allowed = genae("eval", run, "--metrics", "mig", "--allow-skipped", "--json")
    assert "skipped" in json.loads(allowed.stdout)["mig"] and allowed.stderr == ""
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


def test_eval_skips_in_the_default_metric_list_exit_zero(tmp_path, monkeypatch, capsys):
    """Without --metrics, a metric of the default list that does not apply is skipped quietly
    (exit 0); the same list named with --metrics exits 5."""
    import json

    from genae import cli
    from genae.config import build_config
    from genae.training import train

    run = train(build_config("vae", "fake", out=str(tmp_path / "run"),
                             overrides=tiny_overrides("vae") + fast_train_overrides(2)))
    monkeypatch.setattr(cli, "DEFAULT_METRICS", "recon-mse,mig")  # mig: fake data has no factors
    assert cli.main(["eval", str(run), "--json"]) == 0
    assert "skipped" in json.loads(capsys.readouterr().out)["mig"]
    assert cli.main(["eval", str(run), "--json", "--metrics", "recon-mse,mig"]) == cli.EXIT_SKIPPED == 5
    assert "mig skipped" in capsys.readouterr().err


def test_help_texts_say_what_the_commands_do():
    """genae --help names the demo's methods (DEMO_RUNS) and its time; genae manifold --help shows
    its defaults."""
    import re

    from genae.demo import DEMO_RUNS

    top = " ".join(genae("--help").stdout.split()).lower()
    demo = top[top.index("demo"):]
    for method, _ in DEMO_RUNS:
        assert re.search(rf"\b{method}\b", demo), method
    assert "ctrl" not in demo and "about 3 minutes on 2 cpu cores" in demo
    manifold = " ".join(genae("manifold", "--help").stdout.split())
    for default in ("default 0.05", "default 500", "default 4)"):
        assert default in manifold


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
