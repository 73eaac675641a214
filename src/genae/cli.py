"""The ``genae`` command.

    genae train METHOD --data NAME [--data-dir DIR] [--config FILE] [--set a.b=v ...] [--out RUN]
    genae resume RUN
    genae sample RUN --n N --out FILE.png [--seed S] [--class K]
    genae eval RUN --metrics fid,kid,... [--split test] [--n-samples N] [--backbone domain] [--step S] [--json]
               [--allow-skipped]
    genae report RUN
    genae export RUN --out DIR [--step N]      (DIR then works wherever RUN does for inference)
    genae compare RUN|SWEEP ... [--metrics fid,...] [--markdown] [--csv F] [--html F] [--out DIR]
    genae methods | genae config METHOD | genae data list|info|fetch | genae demo

User errors (bad config, missing data, non-finite loss) print one line on stderr and exit non-zero
without a traceback; exit codes: 2 usage/config/data, 3 non-finite loss, 4 a lost rank (DDP),
5 ``genae eval``: a metric named in --metrics does not apply to the run and was skipped (its
reason is printed and written to eval.json like any result; --allow-skipped exits 0), 130
interrupted.

Multi-GPU / multi-node: ``torchrun --nproc-per-node N -m genae train ...`` (and ``resume``) joins the
process group of torchrun's environment (``genae.distributed``); rank 0 alone prints and writes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
from pathlib import Path

from .errors import GenaeError, Interrupted, NonFiniteLoss

DEFAULT_METRICS = "fid,kid,precision-recall,recon-mse,sharpness,knn-acc,cluster-acc,active-dims"
EXIT_SKIPPED = 5  # genae eval: a metric asked for with --metrics was skipped (see the docstring)



def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from . import distributed

    ddp = distributed.launched_by_torchrun() and args.func in (_cmd_train, _cmd_resume, _cmd_sweep, _cmd_eval)
    try:
        if ddp:
            return _run_distributed(args)
        return args.func(args) or 0
    except NonFiniteLoss as e:
        ckpt = getattr(e, "checkpoint", None)
        intact = f"the last good checkpoint {ckpt.name} is intact" if ckpt is not None else \
            "no checkpoint had been written yet"
        print(f"error: {e}; {intact}", file=sys.stderr)
        return 3
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    except GenaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C (the first asks the trainer to checkpoint and stop)
        run = getattr(args, "run", None) or getattr(args, "out", None)
        where = f"; continue with `genae resume {run}` (the last complete checkpoint is intact; a " \
                "half-written one is removed then)" if args.func in (_cmd_train, _cmd_resume) and run else ""
        print(f"\ninterrupted: stopped at once by a second Ctrl-C{where}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `genae ... | head`: the reader left; nothing to report
        return 0
    except OSError as e:  # a read-only folder, a full disk, a path that is a file: one line, no traceback
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


def _run_distributed(args) -> int:
    """``genae train|resume|eval`` as one rank of a torchrun job: join the process group, run, leave it.

    Rank 0 reports user errors (every rank raises the same one, agreed by the trainer); a failed
    collective (another rank died or was killed) is reported by every rank that sees it, naming
    the last complete checkpoint, with exit code 4."""
    import os

    import torch.distributed as dist

    from . import distributed

    if args.func is _cmd_sweep:
        raise GenaeError("genae sweep runs its points as processes of its own and cannot run under "
                         "torchrun; train each point with `torchrun ... -m genae train` instead")
    ctx = distributed.init_from_env(_requested_device(args))
    try:
        if not ctx.main:  # one voice: the others' stdout (summaries, tables) is dropped
            sys.stdout = open(os.devnull, "w")
        try:
            code = args.func(args) or 0
            # leave together: a rank that tears its connections down while another still works
            # can make gloo abort the other at exit (seen on `torchrun -m genae eval`, where rank
            # 0 alone writes after the last collective)
            distributed.barrier(ctx)
            return code
        except (GenaeError, Interrupted):
            if not ctx.main:
                return 130 if isinstance(sys.exc_info()[1], Interrupted) else \
                    3 if isinstance(sys.exc_info()[1], NonFiniteLoss) else 2
            raise
        except RuntimeError as e:  # gloo reports a dead peer as a plain RuntimeError, NCCL as DistError
            if not (isinstance(e, dist.DistError) or _LOST_PEER.search(str(e))):
                raise
            run = getattr(args, "run", None) or getattr(args, "out", None)
            last = ""
            if run:
                from .runs import latest_checkpoint
                with contextlib.suppress(Exception):
                    ck = latest_checkpoint(run, quiet=True)
                    last = f"; the last complete checkpoint is {ck}" if ck else "; no checkpoint was written"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            print(f"error: rank {ctx.rank} of {ctx.world}: a collective failed, another rank has probably "
                  f"died ({type(e).__name__}: {first}){last}", file=sys.stderr)
            return 4
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


_LOST_PEER = re.compile(r"gloo|nccl|Connection (reset|closed)|socket|timed out|peer", re.IGNORECASE)


def _requested_device(args) -> str:
    """``train.device`` of the command (eval's --device, its --set, the run's config, or auto):
    picks NCCL or gloo."""
    if isinstance(getattr(args, "device", None), str):
        return args.device
    for item in getattr(args, "overrides", None) or ():
        if item.startswith("train.device="):
            return item.split("=", 1)[1].strip("'\"")
    if args.func is _cmd_resume:
        with contextlib.suppress(Exception):
            from .runs import read_config
            return str(read_config(args.run).get("train", {}).get("device", "auto"))
    if getattr(args, "config", None):
        with contextlib.suppress(Exception):
            from .config import load_yaml
            return str((load_yaml(args.config).get("train") or {}).get("device", "auto"))
    return "auto"


class _Parser(argparse.ArgumentParser):
    """argparse with genae's error style: one line on stderr naming the fix (``--help``), exit 2,
    rather than a usage block and the error below it (sub-commands inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="genae", description="Train, evaluate and compare generative "
                "autoencoders and encoder/decoder games.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"genae {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    t = sub.add_parser("train", help="train a method on a dataset")
    t.add_argument("method", nargs="?", help="a name from `genae methods` (or `method:` in --config)")
    t.add_argument("--data", help="dataset name (`genae data list`) or folder:PATH")
    _data_dir_arg(t)
    t.add_argument("--config", help="YAML file with method/model/train/data sections")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="NS.KEY=VALUE",
                   help="override one key, e.g. --set model.beta=4 --set train.steps=500")
    t.add_argument("--out", help="run directory (default runs/<method>-<data>-<time>)")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("resume", help="continue a run from its newest complete checkpoint")
    r.add_argument("run")
    r.add_argument("--steps", type=int, default=None, help="new total train.steps (extends the run)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="NS.KEY=VALUE",
                   help="change a key that may change mid-run: train.steps/log_every/sample_every/"
                        "ckpt_every/keep_ckpts/n_samples/progress/tensorboard/threads/device, "
                        "model.*lr (applied to the optimizers)")
    r.set_defaults(func=_cmd_resume)

    s = sub.add_parser("sample", help="write a grid of samples from a trained run")
    s.add_argument("run")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", required=True, help="PNG file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--class", dest="cls", type=int, default=None, metavar="K",
                   help="fix what the run's method samples by to K (`genae methods`, column sample(y=...)): "
                        "class: a class label of the data (ctrl-*); code: a value of the discrete latent "
                        "code (infogan, imae, jointvae, ...); manifold: one of the learned manifolds "
                        "(q-wgan, q-beta-vae); generator: a generator index (dmwgan). K runs from 0 to "
                        "their number − 1; other methods sample unconditionally")
    s.add_argument("--device", default="cpu")
    _prior_args(s)
    s.set_defaults(func=_cmd_sample)

    mf = sub.add_parser("manifold", help="derive the manifold of an unseen image (QMM eq. 3) and write it "
                                         "beside the learned manifolds")
    mf.add_argument("run")
    mf.add_argument("--image", required=True, help="an image file (PNG, JPEG, ...); converted to the run's "
                                                  "channels and size")
    mf.add_argument("--out", required=True, help="PNG file")
    mf.add_argument("--mu", type=float, default=0.05,
                    help="weight μ of the tangential penalty (eq. 3; default %(default)s)")
    mf.add_argument("--steps", type=int, default=500,
                    help="Adam steps of the inversion and of eq. 3 (default %(default)s each)")
    mf.add_argument("--restarts", type=int, default=4, help="random starts of the inversion (default %(default)s)")
    mf.add_argument("--seed", type=int, default=0,
                    help="seed of the inversion's starts and the grid's codes (default %(default)s)")
    mf.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default %(default)s)")
    mf.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bar on stderr (the inversion and eq. 3 take minutes on a CPU)")
    mf.set_defaults(func=_cmd_manifold)

    im = sub.add_parser("imagine", help="per input, its reconstruction and renderings of samples z ~ q(z|x) "
                                       "(LSR-GAN's imaginations)")
    im.add_argument("run")
    im.add_argument("--out", required=True, help="PNG file")
    im.add_argument("--split", default="test", choices=["test", "train"], help="where the inputs come from")
    im.add_argument("--n", type=int, default=8, help="inputs (the first n of the split)")
    im.add_argument("--draws", type=int, default=6, help="samples of q(z|x) per input")
    im.add_argument("--images", nargs="+", default=None, metavar="FILE",
                    help="your own image files instead of the split")
    im.add_argument("--renderer", default=None, choices=["vae", "lsr"],
                    help="lsr-gan: render with the stage-1 VAE decoder or the LSR generator (default: lsr "
                         "once stage 2 has started)")
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--device", default="cpu")
    im.set_defaults(func=_cmd_imagine)

    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint (writes RUN/eval.json), or with "
                                    "--step a kept earlier one")
    e.add_argument("run")
    e.add_argument("--metrics", default=None,
                   help=f"comma-separated names from genae.metrics.METRICS (default: {DEFAULT_METRICS}); "
                        "lsr-gan: NAME@vae / NAME@lsr scores one renderer. A metric named here that does "
                        f"not apply to the run is skipped and the exit code is {EXIT_SKIPPED} (see "
                        "--allow-skipped); the default list skips quietly")
    e.add_argument("--allow-skipped", action="store_true",
                   help="exit 0 although a metric named in --metrics was skipped (it still says why)")
    e.add_argument("--split", default="test", choices=["test", "train"], help="reference split")
    e.add_argument("--n-samples", type=int, default=10000, help="generated samples for fid/kid/is/...")
    e.add_argument("--backbone", default="domain", choices=["domain", "inception"],
                   help="feature network for fid/kid/is (domain: trained here, offline)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--step", type=int, default=None,
                   help="evaluate the kept checkpoint of this step instead of the latest "
                        "(writes RUN/eval-step-SSSSSSSS.json, leaving eval.json to the latest)")
    e.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    e.add_argument("--qmm-images", type=int, default=500,
                   help="source images of qmm-score (default 500, the QMM paper's)")
    e.add_argument("--renderer", default=None, metavar="vae|lsr|vae,lsr",
                   help="lsr-gan: decode with the stage-1 VAE decoder, the LSR generator, or both (each "
                        "metric then appears as NAME@vae and NAME@lsr)")
    _prior_args(e)
    e.set_defaults(func=_cmd_eval)

    rp = sub.add_parser("report", help="write RUN/report.html (self-contained, viewable offline)")
    rp.add_argument("run")
    rp.set_defaults(func=_cmd_report)

    # genae export (genae.export): one checkpoint as a self-contained model folder (Hub layout)
    ex = sub.add_parser("export", help="write a checkpoint as a self-contained model folder (weights, config, "
                        "model card, samples) that genae.load_run, sample and eval read; no training state")
    ex.add_argument("run")
    ex.add_argument("--out", required=True, help="the model folder to create (must not exist, or be empty)")
    ex.add_argument("--step", type=int, default=None, help="export this kept checkpoint (default: the newest)")
    ex.set_defaults(func=_cmd_export)

    # genae sweep (genae.sweep): a grid or list of overrides × seeds, parallel jobs, resumable
    from .sweep import add_arguments as add_sweep_arguments
    sw = sub.add_parser("sweep", help="train and evaluate a method over a grid or list of --set "
                        "overrides × seeds, several jobs at once; rerun to continue")
    add_sweep_arguments(sw)
    sw.set_defaults(func=_cmd_sweep)

    # genae compare (genae.compare): one table over runs and sweeps, mean ± std over seeds
    cp = sub.add_parser("compare", help="compare runs and sweeps: metrics grouped by method and swept "
                        "values, mean ± std over seeds, each number with its protocol",
                        description="Rows: a method and one value of each swept config key (keys that "
                        "differ between runs, except the seed, paths, devices and logging), with their "
                        "number of seeds and training steps; cells: mean ± sample std (ddof 1) over the "
                        "seeds, '—' where not evaluated; headers: which way is better (↑/↓), explained in "
                        "a legend. Each number's protocol (backbone, n_real/n_fake or n, split, step) is a "
                        "footnote mark; numbers of different protocols are never averaged ('mixed [i,j]'). "
                        "Not comparable, so never in one column: runs on different datasets (data.name, or "
                        "other data files by the SHA-256s in RUN/data.json) get one table each; a metric "
                        "measured differently (another backbone's weights, active-dims by mask, KL or "
                        "feature rank) gets one column per measure.")
    cp.add_argument("runs", nargs="+", metavar="RUN|SWEEP", help="run directories, sweep directories "
                    "or folders of runs")
    cp.add_argument("--metrics", default=None, help="comma-separated metrics or metric.field "
                    "(default: every metric evaluated)")
    cp.add_argument("--ignore", default="", metavar="KEYS", help="comma-separated config keys to average "
                    "over like the seed, e.g. data.seed")
    cp.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    cp.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    cp.add_argument("--html", metavar="FILE", help="write the comparison page (self-contained HTML)")
    cp.add_argument("--out", metavar="DIR", help="write compare.md, compare.csv, compare_runs.csv, "
                    "compare.html and the vs_<key>.png plots")
    cp.set_defaults(func=_cmd_compare)

    m = sub.add_parser("methods", help="list the registered methods and what each supports")
    m.set_defaults(func=_cmd_methods)

    mt = sub.add_parser("metrics", help="list the metrics: meaning, what they need, protocol fields")
    mt.set_defaults(func=_cmd_metrics)

    c = sub.add_parser("config", help="print a method's default config as YAML")
    c.add_argument("method")
    c.set_defaults(func=_cmd_config)

    d = sub.add_parser("data", help="list, inspect or fetch datasets")
    dsub = d.add_subparsers(metavar="ACTION")
    dl = dsub.add_parser("list", help="the registered datasets")
    dl.set_defaults(func=_cmd_data_list)
    for name, func, text in (("info", _cmd_data_info, "where a dataset is and what it holds"),
                             ("fetch", _cmd_data_fetch, "download a dataset into the cache (checksummed)")):
        a = dsub.add_parser(name, help=text)
        a.add_argument("name")
        _data_dir_arg(a)
        a.set_defaults(func=func)

    demo = sub.add_parser("demo", help="VAE, WAE-GAN, MaskAAE and AAE on MNIST under one protocol, and the "
                                       "page comparing them (about 3 minutes on 2 CPU cores)")
    demo.add_argument("--out", default=None, help="run directory (default runs/demo-<time>)")
    _data_dir_arg(demo)
    demo.add_argument("--set", dest="overrides", action="append", default=[], metavar="NS.KEY=VALUE",
                      help="override a key in every demo run")
    demo.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    demo.add_argument("--data", default=None, help="dataset (default: MNIST, else Fashion-MNIST)")
    demo.set_defaults(func=_cmd_demo)
    return p


PRIOR_HELP = ("model: the method's own sampler; gmm: decode draws of a Gaussian mixture (K full-covariance "
              "components, EM) fitted on the codes of the first train.prior_examples training examples, any "
              "method that encodes and decodes (ae, vae, wae-gan, maskaae, ...); fitted once per checkpoint and "
              "stored in it (RUN/checkpoints/step-N/ex-post-gmm-kK-s0.safetensors)")


def _prior_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prior", default="model", choices=["model", "gmm"], help=PRIOR_HELP)
    p.add_argument("--components", type=int, default=10, metavar="K",
                   help="--prior gmm: mixture components (default %(default)s, as pythae)")


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="directory holding the dataset files; when given, the only place "
                   "looked in (a missing or damaged file is an error, never a fallback). Without it: "
                   "$GENAE_DATA, ~/.cache/genae/data, system dataset packages, then download")


# --------------------------------------------------------------------------------------------
def _cmd_train(args) -> int:
    from .config import build_config
    from .training import train

    cfg = build_config(args.method, args.data, args.data_dir, args.config, args.overrides, args.out)
    run_dir = train(cfg)
    print(_summary(run_dir))
    return 0


def _summary(run_dir) -> str:
    """One line on what was trained (steps, device, parameters, wall time, final losses), then the
    commands a researcher runs next."""
    from .runs import read_metrics, read_run_info

    info = read_run_info(run_dir)
    last = (read_metrics(Path(run_dir) / "metrics.jsonl") or [{}])[-1]
    losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k.endswith("/loss") and isinstance(v, float))
    params = ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in info.get("parameters", {}).items())
    line = (f"{info.get('method', '?')} on {info.get('data', '?')}: {info.get('step', '?')} steps in "
            f"{info.get('wall_seconds', 0):.1f} s on {info.get('device', '?')}; parameters {params or '?'}"
            + (f"; final {losses}" if losses else ""))
    from .methods import METHODS, method_capabilities

    caps = method_capabilities(info["method"])[0] if info.get("method") in METHODS else frozenset()
    metrics = ",".join([m for m, cap in (("fid", "sample"), ("recon-mse", "reconstruct"), ("cluster-acc", "cluster"))
                        if cap in caps][:2] or ["recon-mse"])
    sample = f"   genae sample {run_dir} --out samples.png" if "sample" in caps else ""
    return (f"{line}\nrun written to {run_dir}\nnext: genae eval {run_dir} --metrics {metrics}{sample}"
            f"   genae report {run_dir}")


def _cmd_resume(args) -> int:
    from .training import resume

    if args.steps is not None and args.steps <= 0:
        raise GenaeError("--steps must be positive")
    run_dir = resume(args.run, steps=args.steps, overrides=args.overrides)
    print(_summary(run_dir))
    return 0


def _cmd_manifold(args) -> int:
    from .manifold import derive, manifold_grid
    from .runs import load_run
    from .distributed import resolve_device
    from .viz.grids import save_png

    out = _out_file(args.out)
    if args.steps <= 0 or args.restarts <= 0:
        raise GenaeError(f"--steps and --restarts must be positive (got {args.steps}, {args.restarts})")
    if not (math.isfinite(args.mu) and args.mu >= 0):
        raise GenaeError(f"--mu must be a finite number >= 0 (got {args.mu})")
    device = str(resolve_device(args.device, "--device"))
    method = load_run(args.run, device=device)
    if method.info.kind != "image":
        raise GenaeError(f"genae manifold needs a run on images; {args.run} was trained on {method.info.kind} data")
    if not method.supports("manifolds"):
        raise GenaeError(f"{type(method).__name__} has no generator manifolds to derive from "
                         "(see `genae methods`, column manifolds)")
    from .data import to_range
    from .data.transforms import convert_range
    from .viz.grids import load_image

    try:
        image = load_image(args.image, method.info.shape)
    except ValueError as e:
        raise GenaeError(f"--image {e}") from None
    # as the trainer converts stored uint8 images
    x = to_range(convert_range(image, "unit", "uint8"), method.input_range).to(device)
    d = derive(method, x, mu=args.mu, steps=args.steps, restarts=args.restarts, seed=args.seed,
               progress=args.progress)
    save_png(manifold_grid(method, x, d, seed=args.seed), out)
    what = "a derived manifold (new biases, eq. 3)" if d.derived else "the best learned manifold (inversion)"
    print(f"{out}: row 1 the image and its regeneration (MSE {d.error[0].item():.4g} per pixel), row 2 "
          f"{what}, then the {method.manifolds().count} learned manifold(s) at the same codes")
    return 0


def _cmd_imagine(args) -> int:
    import torch

    from .data import load_dataset, to_range
    from .data.transforms import convert_range
    from .imagine import imagination_grid
    from .runs import open_checkpoint
    from .distributed import resolve_device
    from .viz.grids import load_image, save_png

    out = _out_file(args.out)
    if args.n <= 0 or args.draws <= 0:
        raise GenaeError("--n and --draws must be positive")
    device = str(resolve_device(args.device, "--device"))
    method, cfg, _ = open_checkpoint(args.run, device=device)
    if method.info.kind != "image":
        raise GenaeError(f"genae imagine needs a run on images; {args.run} was trained on {method.info.kind} data")
    if not (method.supports("posterior_sample") and method.supports("decode")):
        raise GenaeError(f"{type(method).__name__} has no stochastic encoder q(z|x) and decoder to imagine with")
    if args.renderer is not None and not method.renderers:
        raise GenaeError(f"--renderer: {type(method).__name__} has one decoder; only lsr-gan has two renderers")
    if args.images:
        try:
            x = torch.cat([load_image(f, method.info.shape) for f in args.images])
        except ValueError as e:
            raise GenaeError(f"--images {e}") from None
        x = to_range(convert_range(x, "unit", "uint8"), method.input_range)   # as the trainer converts
    else:
        x = to_range(load_dataset(cfg.data, args.split).x[:args.n], method.input_range)
    with method.render_with(args.renderer):
        save_png(imagination_grid(method, x.to(device), args.draws, args.seed), out)
    print(f"{out}: {len(x)} rows: input, reconstruction from μ(x), {args.draws} renderings of z ~ q(z|x)")
    return 0


def _cmd_sample(args) -> int:
    import torch

    from .runs import load_run
    from .distributed import resolve_device
    from .viz.grids import save_grid

    if args.n <= 0:
        raise GenaeError("--n must be positive")
    out = _out_file(args.out, (".png", ".safetensors"))
    device = str(resolve_device(args.device, "--device"))
    method = load_run(args.run, device=device)
    wanted = ".png" if method.info.kind == "image" else ".safetensors"
    if out.suffix.lower() != wanted:  # images as a PNG grid, vectors as a tensor file
        raise GenaeError(f"--out {out}: this run's samples are {method.info.kind}s, written as {wanted}; "
                         f"e.g. --out {out.with_suffix(wanted)}")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    prior = None
    if args.prior != "model":
        if args.cls is not None:
            raise GenaeError(f"--class with --prior {args.prior}: the ex-post prior is one mixture over all "
                             "codes; there is nothing for K to fix")
        prior = _cli_ex_post(args.run, method, args.components)
    elif args.cls is not None and method.supports("sample"):  # (one that cannot sample says so below)
        if method.sample_y is None:
            raise GenaeError(f"--class: {type(method).__name__} samples unconditionally (this run); "
                             "there is nothing for K to fix")
        from .methods.base import SAMPLE_Y

        k, what = method.sample_y_count(), SAMPLE_Y[method.sample_y]
        if not 0 <= args.cls < k:
            raise GenaeError(f"--class {args.cls}: for this run ({type(method).__name__}) K fixes {what} "
                             f"({method.sample_y}); choose 0..{k - 1}")
    from .methods import Unsupported

    try:
        with torch.no_grad():
            if prior is None:
                x = method.sample(args.n, y=args.cls, generator=gen)
            else:  # the mixture draws on the CPU (float64), so the same seed gives the same codes anywhere
                from .ex_post import decode_prior

                x = decode_prior(method, prior, args.n, torch.Generator().manual_seed(args.seed))
    except Unsupported as e:  # e.g. CTRL whose prior saw no example of class K
        raise GenaeError(f"genae sample: {e}") from None
    if method.info.kind != "image":
        from safetensors.torch import save_file

        save_file({"samples": x.detach().cpu().contiguous()}, str(out))
        print(f"{args.n} vectors of dimension {x.shape[1]} written to {out} (safetensors, key 'samples')")
        return 0
    save_grid(method.to_unit(x), out)
    print(f"{args.n} samples written to {out}")
    return 0


def _cli_ex_post(run: str, method, components: int, ckpt: Path | None = None):
    """The ex-post mixture of ``run``'s checkpoint ``ckpt`` (default: the newest): read from the
    checkpoint, or fitted on the first ``train.prior_examples`` training examples and stored there."""
    from .data import load_dataset
    from .ex_post import ex_post_prior, why_not
    from .runs import checkpoint_config, require_checkpoint

    reason = why_not(method)
    if reason:
        raise GenaeError(f"--prior gmm: {reason}")
    if components < 1:
        raise GenaeError("--components must be positive")
    ckpt = ckpt or require_checkpoint(run)
    cfg, _ = checkpoint_config(run, ckpt)
    x = load_dataset(cfg.data, "train").x[:cfg.train.prior_examples]
    return ex_post_prior(run, ckpt, method, x, components, log=lambda m: print(m, file=sys.stderr, flush=True))


def _out_file(path: str, suffixes: tuple[str, ...] = (".png",)) -> Path:
    """``--out`` of sample, imagine and manifold: a file name ending in one of ``suffixes`` in a
    folder that exists (checked before any work; Pillow names the format by the extension)."""
    out = Path(path)
    if out.is_dir():
        raise GenaeError(f"--out {out} is a directory; give a file name, e.g. {out / ('samples' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        raise GenaeError(f"--out {out}: give a file name ending in {' or '.join(suffixes)}, e.g. "
                         f"{out.with_suffix(suffixes[0]) if out.name else 'samples' + suffixes[0]}")
    if not out.parent.is_dir():
        raise GenaeError(f"--out {out}: the folder {out.parent} does not exist")
    return out


def _evaluate_renderers(method, ctx, names, renderer: str | None) -> dict:
    """``evaluate`` once, or once per renderer of ``--renderer`` (lsr-gan's two decoders): with one
    renderer the names stay, with several each result is keyed NAME@RENDERER (what ``--metrics
    NAME@RENDERER`` asks directly)."""
    from .metrics import evaluate, split_renderer

    if renderer is None:
        return evaluate(method, ctx, names)
    chosen = [r.strip() for r in renderer.split(",") if r.strip()]
    choices = method.renderers
    if not choices:
        raise GenaeError(f"--renderer: {type(method).__name__} has one decoder; only lsr-gan has two renderers")
    if not chosen or any(r not in choices for r in chosen):
        raise GenaeError(f"--renderer {renderer!r}: choose {', '.join(choices)} or {','.join(choices)}")
    pinned = [n for n in names if split_renderer(n)[1] is not None]
    if pinned:
        raise GenaeError(f"--renderer with {pinned[0]!r}: name the renderer once, in --renderer or after @")
    res = evaluate(method, ctx, [f"{n}@{r}" for r in chosen for n in names])
    return {n: res[f"{n}@{chosen[0]}"] for n in names} if len(chosen) == 1 else res


def _cmd_eval(args) -> int:
    from .ex_post import why_not
    from .metrics import EvalContext, check_names
    from .runs import check_data_record, checkpoint_step, jsonable, open_checkpoint, write_eval
    from .distributed import resolve_device

    names = check_names([n.strip() for n in (args.metrics or DEFAULT_METRICS).split(",") if n.strip()])
    if args.n_samples <= 0:
        raise GenaeError("--n-samples must be positive")
    from . import distributed

    device = str(distributed.device_for(resolve_device(args.device, "--device")))
    method, cfg, ckpt = open_checkpoint(args.run, device=device, step=args.step)
    step = checkpoint_step(ckpt)
    if args.qmm_images <= 0:
        raise GenaeError("--qmm-images must be positive")
    ctx = EvalContext(cfg.data, split=args.split, n_samples=args.n_samples, backbone=args.backbone,
                      device=device, seed=args.seed, progress=not args.json, qmm_images=args.qmm_images)
    from .metrics import EX_POST, SAMPLING, split_renderer

    if args.prior != "model":  # the sampling metrics asked for are scored on the ex-post prior's samples
        if args.renderer is not None:
            raise GenaeError(f"--prior {args.prior} with --renderer: choose one way of producing samples")
        names = [f"{n}@{EX_POST}" if n in SAMPLING else n for n in names]
        if not any(split_renderer(n)[1] == EX_POST for n in names):
            raise GenaeError(f"--prior {args.prior}: none of the metrics samples; the prior changes only "
                             f"{', '.join(SAMPLING)}")
    if any(split_renderer(n)[1] == EX_POST for n in names) and why_not(method) is None:
        ctx.ex_post = _cli_ex_post(args.run, method, args.components, ckpt)   # stored in the checkpoint
    with contextlib.suppress(GenaeError):  # a missing split is reported by the metrics that need it
        # the split evaluated on, loaded once (the context keeps it for the metrics)
        check_data_record(Path(args.run), {args.split: ctx.dataset(args.split)})
    results = _evaluate_renderers(method, ctx, names, args.renderer)
    ddp = distributed.current()
    if ddp is not None and not ddp.main:  # under torchrun: every rank computed, rank 0 reports and writes
        return 0
    # print before writing: a failed write (read-only folder, full disk) must not lose the numbers
    if args.json:
        print(json.dumps({k: {**v, "step": step} for k, v in results.items()}, default=jsonable),
              flush=True)
    else:
        print(_format_table(results, f"{cfg.method} on {cfg.data.name}, step {step}, reference split "
                                     f"{args.split}"), flush=True)
    try:
        from .loggers import log_eval

        log_eval(Path(args.run), cfg, step, results)
        path = write_eval(args.run, cfg, results, step, latest=args.step is None)
    except OSError as e:
        raise GenaeError(f"could not write the results into {args.run} ({e.strerror or e}); they are "
                         "printed above") from None
    if not args.json:
        print(f"written to {path}")
    skipped = [name for name, r in results.items() if "skipped" in r]
    if skipped and args.metrics is not None and not args.allow_skipped:  # asked for, not computed
        print(f"error: {', '.join(skipped)} skipped: not applicable to this run (the reasons are in the "
              f"results, which are written); pass --allow-skipped to exit 0 all the same", file=sys.stderr)
        return EXIT_SKIPPED
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import sweep_command

    return sweep_command(args)


def _cmd_report(args) -> int:
    from .runs import read_config
    from .viz.report import write_report

    read_config(args.run)  # a clear error if RUN is not a run
    print(f"report written to {write_report(args.run)}")
    return 0


def _cmd_export(args) -> int:
    from .export import export_model

    out = export_model(args.run, args.out, step=args.step)
    print(f"exported to {out}: model.safetensors, config.yaml, README.md (model card), genae_model.json; "
          f"load it with genae.load_run({str(out)!r}) or `genae sample {out} --out samples.png`")
    return 0


def _cmd_compare(args) -> int:
    from .viz.compare_page import run_compare

    return run_compare(args.runs, metrics=args.metrics, ignore=args.ignore, markdown=args.markdown,
                       csv_path=args.csv, html_path=args.html, out=args.out)


PROTOCOL_KEYS = ("backbone", "backbone_name", "backbone_weights", "backbone_test_acc", "n_real", "n_fake", "split",
                 "seconds")


def _format_table(results: dict, title: str) -> str:
    """One row per metric: its numbers, then the protocol (backbone, n_real, n_fake, split)."""
    rows = [title]
    width = max(map(len, results), default=0)
    for name, r in results.items():
        if "skipped" in r:
            rows.append(f"  {name:<{width}}  skipped: {r['skipped']}")
            continue
        nums = ", ".join(f"{k}={_short(v)}" for k, v in r.items()
                         if k not in PROTOCOL_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool))
        proto = ", ".join(f"{k}={_short(r[k])}" for k in PROTOCOL_KEYS if k in r and k != "seconds")
        rows.append(f"  {name:<{width}}  {nums}" + (f"   [{proto}]" if proto else ""))
    return "\n".join(rows)


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _cmd_methods(args) -> int:
    """Each registered method, its summary, and a table of what it supports at inference."""
    from .methods import METHODS, method_capabilities
    from .methods.base import CAPABILITIES

    width = max(map(len, METHODS))
    for name, spec in METHODS.items():
        print(f"{name:<{width}}  {spec.description}")
    print()
    short = {"posterior_sample": "post_sample", "active_dims": "active", "reconstruct": "recon"}
    cols = [short.get(c, c) for c in CAPABILITIES] + ["sample(y=...)"]
    print(f"{'':<{width}}  " + "  ".join(cols))
    for name in METHODS:
        caps, sample_y = method_capabilities(name)
        cells = ["x".center(len(col)) if cap in caps else "-".center(len(col))
                 for cap, col in zip(CAPABILITIES, cols)]
        print(f"{name:<{width}}  " + "  ".join(cells) + f"  {sample_y or '-'}")
    print("\n" + "; ".join(f"{c}: {d}" for c, d in CAPABILITIES.items()))
    return 0


def _cmd_metrics(args) -> int:
    """Each metric of ``genae eval --metrics``: its meaning, what it needs, its protocol fields."""
    from .metrics import METRICS

    width = max(map(len, METRICS))
    for name, spec in METRICS.items():
        print(f"{name:<{width}}  {spec.description}")
        print(f"{'':<{width}}    needs: {', '.join(spec.needs) or 'nothing'}; "
              f"protocol: {', '.join(spec.protocol)}")
    print("\nneeds: method capabilities (genae methods) and data (labels, images, factors); a|b = either")
    return 0


def _cmd_config(args) -> int:
    from .config import default_config_yaml

    print(default_config_yaml(args.method), end="")
    return 0


def _cmd_data_list(args) -> int:
    from .data import list_datasets

    rows = list_datasets()
    width = max(len(n) for n, _ in rows)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")
    return 0


def _data_cfg(args):
    from .data import DataConfig, check_data_config

    cfg = DataConfig(name=args.name, root=args.data_dir)
    check_data_config(cfg)
    return cfg


def _cmd_data_info(args) -> int:
    from .data import dataset_info

    print(json.dumps(dataset_info(_data_cfg(args)), indent=2, default=str))
    return 0


def _cmd_data_fetch(args) -> int:
    from .data import fetch

    print(f"{args.name} is in {fetch(_data_cfg(args))}")
    return 0


def _cmd_demo(args) -> int:
    """Four methods on MNIST under one protocol and the page that compares them (genae.demo)."""
    import datetime as dt

    from .demo import run_demo

    if args.jobs <= 0:
        raise GenaeError(f"--jobs must be positive (got {args.jobs})")
    out = args.out or f"runs/demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    page = run_demo(out, args.data_dir, args.overrides, jobs=args.jobs, data=args.data)
    print(f"demo written to {out}: open {page} (table, samples and reconstructions side by side); "
          f"each run under {out}/runs/ has its own report (genae report RUN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
