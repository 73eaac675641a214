"""`genae sweep`: the design's expansion, the thread budget, and sweeps run end to end on `fake`
data through the command line (children killed and resumed as a user would)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import fast_train_overrides, tiny_overrides
from genae.errors import ConfigError
from genae.runs import checkpoint_step, find_checkpoint
from genae.sweep import (SweepSpec, expand, load_sweep_file, parse_grid, parse_point, point_name,
                         spec_from_args, thread_budget)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _sweep(*args, wait=True):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genae", "sweep", *map(str, args)]
    if not wait:  # its own process group, so that the test can kill the sweep and its jobs together
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _sets(items):
    return [a for item in items for a in ("--set", item)]


# --------------------------------------------------------------------------------------------
# The design
# --------------------------------------------------------------------------------------------
def test_grid_expansion_is_keys_times_values_times_seeds_seed_major():
    spec = SweepSpec("vae", grid={"model.latent_dim": ["4", "8", "16"], "model.beta": ["1", "2"]}, seeds=[0, 1])
    points = expand(spec)
    assert len(points) == 3 * 2 * 2
    assert [p["seed"] for p in points] == [0] * 6 + [1] * 6            # every point of seed 0 first
    assert points[0] == {"overrides": ["model.latent_dim=4", "model.beta=1"], "seed": 0,
                         "name": "model.latent_dim=4,model.beta=1,seed=0"}
    assert points[1]["overrides"] == ["model.latent_dim=4", "model.beta=2"]  # the last key varies fastest
    assert len({p["name"] for p in points}) == 12
    assert [p["name"] for p in expand(SweepSpec("vae", seeds=[3]))] == ["seed=3"]   # seeds only


def test_list_points_combine_with_the_grid_and_clashes_are_refused():
    spec = SweepSpec("maskaae", points=[{"model.latent_dim": "2"}, {"model.latent_dim": "4", "model.lam3_every": "7"}],
                     grid={"model.learn_mask": ["true", "false"]}, seeds=[0])
    assert [p["overrides"] for p in expand(spec)] == [
        ["model.latent_dim=2", "model.learn_mask=true"], ["model.latent_dim=2", "model.learn_mask=false"],
        ["model.latent_dim=4", "model.lam3_every=7", "model.learn_mask=true"],
        ["model.latent_dim=4", "model.lam3_every=7", "model.learn_mask=false"]]
    with pytest.raises(ConfigError, match="in both the grid and the list"):
        expand(SweepSpec("vae", points=[{"model.beta": "1"}], grid={"model.beta": ["2"]}, seeds=[0]))
    with pytest.raises(ConfigError, match="--seeds"):
        expand(SweepSpec("vae", grid={"train.seed": ["1", "2"]}, seeds=[0]))
    with pytest.raises(ConfigError, match="twice"):
        expand(SweepSpec("vae", points=[{"model.beta": "1"}, {"model.beta": "1"}], seeds=[0]))
    from genae.sweep import resolve

    with pytest.raises(ConfigError, match="--nproc-per-node must be at least 1"):   # before anything is written
        resolve(SweepSpec("vae", seeds=[0], nproc=0))


def test_command_line_values_and_names():
    assert parse_grid(["model.betas=(0.5,0.9),(0.0, 0.99)", "model.likelihood=gaussian,'bernoulli'"]) == {
        "model.betas": ["(0.5,0.9)", "(0.0, 0.99)"], "model.likelihood": ["gaussian", "'bernoulli'"]}
    assert parse_point("model.latent_dim=4;model.betas=(0.5,0.9)") == {"model.latent_dim": "4",
                                                                       "model.betas": "(0.5,0.9)"}
    for bad in (["latent_dim=4"], ["model.latent_dim="], ["model.beta=1", "model.beta=2"]):
        with pytest.raises(ConfigError):
            parse_grid(bad)
    assert point_name(["model.betas=(0.0, 0.99)", "data.root=/x y"], 1) == "model.betas=_0.0,0.99_,data.root=_xy,seed=1"
    long = point_name([f"model.k{i}=123456789" for i in range(20)], 0)
    assert len(long) <= 120 and long != point_name([f"model.k{i}=123456789" for i in range(21)], 0)
    # two points a file name cannot tell apart get a digest each
    names = [p["name"] for p in expand(SweepSpec("vae", grid={"data.root": ["a/b", "a:b"]}, seeds=[0]))]
    assert len(set(names)) == 2 and all(n.startswith("data.root=a_b,seed=0-") for n in names)


def test_sweep_file_gives_base_sections_grid_list_and_settings(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "method": "maskaae", "data": "synthetic", "model": {"hidden": 64, "learn_mask": True},
        "train": {"steps": 100}, "set": ["data.latent_dim=8"],
        "grid": {"model.latent_dim": [4, 8], "model.likelihood": ["gaussian", "1"]},
        "list": [{"model.lam3_every": 7}], "seeds": [0, 2], "metrics": "fid,nac", "jobs": 2}))
    kw = load_sweep_file(path)
    assert kw["sets"] == ["model.hidden=64", "model.learn_mask=true", "train.steps=100", "data.name=synthetic",
                          "data.latent_dim=8"]
    assert kw["grid"] == {"model.latent_dim": ["4", "8"], "model.likelihood": ["gaussian", "'1'"]}  # "1" stays a string
    assert kw["points"] == [{"model.lam3_every": "7"}] and kw["seeds"] == [0, 2]
    assert (kw["metrics"], kw["jobs"], kw["method"]) == (["fid", "nac"], 2, "maskaae")
    assert len(expand(SweepSpec(**kw))) == 2 * 2 * 2
    # the command line adds to the file: --set after the file's, --grid keys beside its grid
    from genae.cli import _parser

    args = _parser().parse_args(["sweep", "--config", str(path), "--set", "train.steps=5", "--grid",
                                 "model.beta=1,2", "--seeds", "7", "--jobs", "1"])
    spec, out = spec_from_args(args)
    assert spec.sets[-1] == "train.steps=5" and list(spec.grid) == ["model.latent_dim", "model.likelihood", "model.beta"]
    assert (spec.seeds, spec.jobs, out) == ([7], 1, None)
    path.write_text("method: vae\ngrid: {model.beta: 3}\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep_file(path)
    args = _parser().parse_args(["sweep", "--resume", str(tmp_path), "--grid", "model.beta=1", "--jobs", "1"])
    with pytest.raises(ConfigError, match="drop --grid"):
        spec_from_args(args)


# --------------------------------------------------------------------------------------------
# The thread budget
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cores, pending, jobs, threads, expect, noted", [
    (2, 8, None, None, (2, 1), False),   # 2 cores: 2 jobs × 1 thread
    (2, 1, None, None, (1, 2), False),   # a lone job gets both cores
    (16, 8, None, None, (8, 2), False),
    (2, 8, 3, None, (2, 1), True),       # 3 compute threads on 2 cores stall: cut to 2
    (2, 8, None, 2, (1, 2), False),
    (2, 8, 2, 2, (1, 2), True),
    (4, 8, None, 3, (1, 3), False),
    (1, 4, None, None, (1, 1), False),
    (2, 0, None, None, (1, 2), False),   # nothing to run
    (8, 8, None, 16, (1, 8), True),
])
def test_thread_budget_never_exceeds_the_cores(cores, pending, jobs, threads, expect, noted):
    b = thread_budget(cores, pending, jobs, threads)
    assert (b.jobs, b.threads) == expect and (b.note is not None) == noted
    assert b.jobs * b.threads <= cores


def test_thread_budget_refuses_non_positive_requests():
    with pytest.raises(ConfigError, match="--jobs"):
        thread_budget(2, 4, jobs=0)


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------
def test_sweep_trains_evaluates_and_records_every_point(tmp_path):
    out = tmp_path / "sweep"
    args = ["vae", "--data", "fake", *_sets(tiny_overrides("vae") + fast_train_overrides(4)),
            "--grid", "model.latent_dim=2,3", "--seeds", "0,1", "--metrics", "recon-mse", "--jobs", "2", "--out", out]
    proc = _sweep(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "vae" and manifest["grid"] == {"model.latent_dim": ["2", "3"]}
    assert manifest["budget"]["jobs"] * manifest["budget"]["threads"] <= os.cpu_count()
    names = [p["name"] for p in manifest["points"]]
    assert names == [f"model.latent_dim={m},seed={s}" for s in (0, 1) for m in (2, 3)]
    for p in manifest["points"]:
        assert (p["status"], p["step"], p["steps"], p["message"]) == ("done", 4, 4, None)
        assert p["eval"]["recon-mse"]["step"] == 4 and p["eval"]["recon-mse"]["value"] > 0
        cfg = yaml.safe_load((out / p["run"] / "config.yaml").read_text())
        assert cfg["train"]["seed"] == p["seed"] and cfg["model"]["latent_dim"] == int(p["overrides"][0][-1])
        assert cfg["train"]["threads"] == manifest["budget"]["threads"]
        assert json.loads((out / p["run"] / "eval.json").read_text())["metrics"]["recon-mse"]["step"] == 4
    lines = proc.stdout.splitlines()
    assert sum(ln.startswith("start") for ln in lines) == 8 and sum(ln.startswith("done") for ln in lines) == 4
    assert any(ln.split()[:3] == ["model.latent_dim=3", "1", "done"] for ln in lines)   # the table
    # the same command again: nothing to do; another grid in the same directory: refused, naming it
    again = _sweep(*args)
    assert again.returncode == 0 and "4 points (4 done)" in again.stdout and "start" not in again.stdout
    changed = _sweep(*[a if a != "model.latent_dim=2,3" else "model.latent_dim=2,5" for a in args])
    assert changed.returncode == 2 and "another design" in changed.stderr and "grid" in changed.stderr
    assert "Traceback" not in changed.stderr and len(list((out / "runs").iterdir())) == 4


def _digest(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_killed_sweep_resumes_unfinished_runs_and_leaves_finished_ones(tmp_path):
    out = tmp_path / "sweep"
    long = 600
    args = ["ae", "--data", "fake", *_sets(tiny_overrides("ae") + fast_train_overrides(4, ckpt_every=20, log_every=20,
                                                                                   sample_every=10**6)),
            "--point", "model.latent_dim=2", "--point", f"model.latent_dim=3;train.steps={long}",
            "--metrics", "recon-mse", "--jobs", "1", "--threads", "1", "--out", out]
    first, second = out / "runs" / "model.latent_dim=2,seed=0", out / "runs" / f"model.latent_dim=3,train.steps={long},seed=0"
    proc = _sweep(*args, wait=False)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                points = json.loads((out / "manifest.json").read_text())["points"]
            except (OSError, ValueError):
                points = None
            if points and points[0]["status"] == "done" and (second / "checkpoints" / "latest").is_file():
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # the sweep and its job, at once
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the sweep ended before it was killed:\n{proc.stdout.read()}"
    reached = checkpoint_step(find_checkpoint(second)[0])
    assert reached < long, "the second run finished before it could be killed"
    before, log_size = _digest(first), (out / "logs" / f"{first.name}.log").stat().st_size

    rerun = _sweep(*args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 done, 1 to resume" in rerun.stdout
    assert f"[2/2] {second.name}: resume from step {reached}" in rerun.stdout
    assert _digest(first) == before                                    # the finished run: untouched
    assert (out / "logs" / f"{first.name}.log").stat().st_size == log_size   # no command ran for it
    steps = [json.loads(ln)["step"] for ln in (second / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(20, long + 1, 20))                      # each step once
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["done", "done"]
    assert manifest["points"][1]["eval"]["recon-mse"]["step"] == long


@pytest.mark.ddp
def test_sweep_trains_each_point_data_parallel_under_torchrun(tmp_path):
    """``--nproc-per-node 2``: each point trains as a 2-rank torchrun job (gloo on this CPU) and equals
    one process at the same global batch; its evaluation runs in one process."""
    from safetensors.torch import load_file

    from genae.config import build_config
    from genae.runs import latest_checkpoint
    from genae.training import train

    out = tmp_path / "sweep"
    sets = tiny_overrides("vae") + fast_train_overrides(4, batch_size=20, threads=1)
    proc = _sweep("vae", "--data", "fake", *_sets(sets), "--seeds", "0", "--metrics", "recon-mse",
                  "--nproc-per-node", "2", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["asked"]["nproc"] == 2 and manifest["points"][0]["status"] == "done"
    assert "× 2 processes (torchrun)" in proc.stdout
    single = train(build_config("vae", "fake", overrides=sets + ["train.seed=0"], out=str(tmp_path / "single")))
    a = load_file(str(latest_checkpoint(out / manifest["points"][0]["run"]) / "model.safetensors"))
    b = load_file(str(latest_checkpoint(single) / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
