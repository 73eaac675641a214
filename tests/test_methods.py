"""The contract over every entry of METHODS, with tiny configs.

For each method: every Update is finite; within an Update each player's gradient at step time
equals ``torch.autograd.grad`` of its own loss w.r.t. its own parameters, and no other parameter
receives a gradient; players stepped together share no parameter; save/load gives identical
samples for a seed; the inference API has the documented shapes (or says it is unsupported).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import (NETS, TINY, TINY_VECTOR, VECTOR_UNSUPPORTED, code_dim, fast_train_overrides,
                      tiny_overrides)
from genae import runs
from genae.config import build_config
from genae.errors import ConfigError
from genae.methods import METHODS, Batch, DataInfo, Unsupported
from genae.trainer import backward_update, player_params, step_update
from genae.training import train

IMAGE = DataInfo((1, 28, 28), 10, "image")


def test_every_method_has_a_tiny_config():
    assert set(TINY) == set(METHODS) == set(NETS)


def _build(name, info=IMAGE, **extra):
    torch.manual_seed(0)
    spec = METHODS[name]
    return spec.build(spec.config(**{**TINY[name], **extra}), info)


def _batch(method, n=20):
    """A batch in the method's input range; labels hold every class (as balanced batches do)."""
    info = method.info
    g = torch.Generator().manual_seed(1)
    x = torch.rand((n, *info.shape), generator=g)
    if method.input_range == "tanh":
        x = x * 2 - 1
    y = torch.arange(n)[torch.randperm(n, generator=g)] % info.num_classes if info.num_classes else None
    return Batch(x, y)


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_updates_are_finite_and_gradients_isolated(name, net):
    overrides, shape = NETS[name][net]
    method = _build(name, DataInfo(shape, 10, "image"), **overrides)
    opts = method.optimizers()
    params = player_params(opts)
    owned = {id(p) for ps in params.values() for p in ps}
    trainable = [p for p in method.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} <= owned, "a trainable parameter belongs to no player"
    batch = _batch(method)
    n_updates = 0
    for step in range(2):
        for update in method.train_step(batch, step):
            n_updates += 1
            players = list(update.losses)
            ids = [{id(p) for p in params[pl]} for pl in players]
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    assert not ids[i] & ids[j], f"players {players[i]}, {players[j]} share parameters in one update"
            for pl, loss in update.losses.items():
                assert loss.dim() == 0 and torch.isfinite(loss), f"{name}: {pl} loss {loss}"
            for k, v in update.logs.items():
                assert "/" in k, f"log key {k!r} is not <player>/<term>"
                assert not torch.is_tensor(v) or not v.requires_grad, f"log {k} is not detached"
            expected = {pl: torch.autograd.grad(update.losses[pl], params[pl], retain_graph=True,
                                                allow_unused=True) for pl in players}
            for p in method.parameters():
                p.grad = None
            backward_update(update, params)
            stepped = set().union(*ids)
            for pl in players:
                for p, e in zip(params[pl], expected[pl]):
                    got = p.grad if p.grad is not None else torch.zeros_like(p)
                    torch.testing.assert_close(got, e if e is not None else torch.zeros_like(p),
                                               msg=f"{name}: gradient of player {pl}")
            for p in trainable:
                if id(p) not in stepped:
                    assert p.grad is None, f"{name}: a parameter outside {players} received a gradient"
            step_update(update, opts, params, {})
    assert n_updates >= 2


def _exercise(method, capability: str, x: torch.Tensor, y: torch.Tensor | None):
    """Call ``capability`` once on a tiny batch and check the documented shapes; returns nothing,
    raises ``Unsupported`` where the method does not support it."""
    n = len(x)
    if capability == "encode":
        assert method.encode(x).ndim == 2 and len(method.encode(x)) == n
    elif capability == "decode":
        z = method.encode(x) if method.supports("encode") else torch.randn(n, 4)
        assert method.decode(z).shape == x.shape
    elif capability == "reconstruct":
        out = method.reconstruct(x)
        assert out.shape == x.shape and torch.isfinite(out).all()
    elif capability == "sample":
        g = torch.Generator().manual_seed(0)
        s = method.sample(7, generator=g)
        assert s.shape == (7, *method.info.shape) and torch.isfinite(s).all()
        if method.sample_y is None:
            with pytest.raises(Unsupported, match="unconditionally"):
                method.sample(7, y=torch.zeros(7, dtype=torch.long), generator=g)
        else:
            fixed = method.sample(7, y=torch.full((7,), 1, dtype=torch.long), generator=g)
            assert fixed.shape == s.shape
    elif capability == "posterior":
        q = method.posterior(x)
        assert q.kind in ("gaussian", "categorical", "hybrid")
        if q.mean is not None:
            assert q.mean.shape == q.logvar.shape and len(q.mean) == n
        if q.logits is not None:
            assert q.probs.shape[0] == n and torch.allclose(q.probs.sum(1), torch.ones(n))
    elif capability == "posterior_sample":
        a = method.posterior_sample(x, generator=torch.Generator().manual_seed(0))
        b = method.posterior_sample(x, generator=torch.Generator().manual_seed(0))
        assert torch.equal(a, b) and len(a) == n
        if method.supports("decode"):
            assert method.decode(a).shape == x.shape
    elif capability == "cluster":
        p = method.cluster(x)
        assert p.shape[0] == n and torch.allclose(p.sum(1), torch.ones(n), atol=1e-5)
    elif capability == "active_dims":
        m = method.active_dims()
        assert m.dtype == torch.bool and m.ndim == 1
    elif capability == "fit_prior":
        method.fit_prior(x, y)
    elif capability == "figures":
        from matplotlib.figure import Figure

        from genae.methods.base import Grid, Plot
        from genae.viz.figures import draw

        figs = method.figures(x, y)
        assert isinstance(figs, dict) and figs
        for name, spec in figs.items():   # methods compute (data), the report draws
            assert isinstance(spec, (Grid, Plot)), f"{name}: {type(spec).__name__} is a drawing, not data"
            if isinstance(spec, Grid):
                assert spec.images.dim() == 4 and 0 <= float(spec.images.min()) <= float(spec.images.max()) <= 1
            drawn = draw(spec)
            assert isinstance(drawn, Figure) or (drawn.dtype == np.uint8 and drawn.ndim == 3), name
    elif capability == "manifolds":
        m = method.manifolds()
        assert m.count >= 1 and m.prior in ("normal", "uniform")
        z = torch.randn(n, m.dim)
        for i in (0, m.count - 1):
            out = m.generator(i)(z)
            assert out.shape == x.shape and torch.isfinite(out).all()
        if m.layers:  # explicit biases reproduce manifold i
            i = m.count - 1
            biases = [layer.biases[i].expand(n, -1) for layer in m.layers]
            torch.testing.assert_close(m.render(z, biases=biases), m.generator(i)(z))
    else:
        raise AssertionError(f"the contract test does not know {capability!r}")


@pytest.mark.parametrize("name", list(METHODS))
def test_capabilities_declared_work_and_undeclared_raise(name):
    """Every capability a method declares works on a tiny config with the documented shapes;
    every one it does not declare raises ``Unsupported`` with a reason."""
    from genae.methods.base import CAPABILITIES

    method = _build(name).eval()
    batch = _batch(method)
    declared = set(method.capabilities)
    assert declared <= set(CAPABILITIES)
    with torch.no_grad():
        if "fit_prior" in declared:  # as the trainer does before sampling
            method.fit_prior(batch.x, batch.y)
        for capability in CAPABILITIES:
            whole = capability in ("fit_prior", "figures")  # these see a batch holding every class
            x, y = (batch.x, batch.y) if whole else (batch.x[:5], None)
            if capability in declared:
                _exercise(method, capability, x, y)
            else:
                with pytest.raises(Unsupported) as e:
                    _exercise(method, capability, x, y)
                assert str(e.value), "Unsupported must say why"


def test_undeclared_capabilities_and_bad_sample_y_are_rejected_at_class_creation():
    from genae.methods.base import Method

    with pytest.raises(TypeError, match="unknown names"):
        type("Bad", (Method,), {"capabilities": frozenset({"telepathy"})})
    with pytest.raises(TypeError, match="sample_y"):
        type("Bad", (Method,), {"sample_y": "mood"})
    with pytest.raises(TypeError, match="sample_y_count"):  # what y fixes, but not how many values it has
        type("Bad", (Method,), {"sample_y": "code"})


@pytest.mark.parametrize("name", list(METHODS))
def test_sample_y_as_int_or_tensor_and_its_range(name):
    """``sample(n, y=k)`` equals ``sample(n, y=full((n,), k))`` for the same seed, for every value
    of ``sample_y_count()``; a value out of range, a wrong shape or a float tensor raises
    ``Unsupported`` naming what y fixes; a method that samples unconditionally refuses any y."""
    from genae.methods.base import SAMPLE_Y

    method = _build(name).eval()
    if not method.supports("sample"):
        return
    batch = _batch(method)
    with torch.no_grad():
        if method.supports("fit_prior"):  # CTRL samples from Gaussians fitted to encoded data
            method.fit_prior(batch.x, batch.y)
        draw = lambda y: method.sample(5, y=y, generator=torch.Generator().manual_seed(7))  # noqa: E731
        if method.sample_y is None:
            for y in (0, torch.zeros(5, dtype=torch.long)):
                with pytest.raises(Unsupported, match="unconditionally"):
                    draw(y)
            return
        k = method.sample_y_count()
        assert k >= 2, f"{name}: y has {k} value(s) but sample_y={method.sample_y!r}"
        for value in (0, k - 1):
            by_int = draw(value)
            assert by_int.shape == (5, *method.info.shape)
            torch.testing.assert_close(by_int, draw(torch.full((5,), value, dtype=torch.long)), rtol=0, atol=0)
        assert not torch.equal(draw(0), draw(k - 1)), f"{name}: y does not change the samples"
        for bad in (k, -1, torch.full((5,), k), torch.zeros(4, dtype=torch.long), torch.zeros(5), 0.0):
            with pytest.raises(Unsupported, match=SAMPLE_Y[method.sample_y]):
                draw(bad)


def test_an_instance_with_nothing_for_y_to_choose_samples_unconditionally():
    """sample_y is per instance: one manifold (num_biases=1) or CTRL's LDR-Binary on unlabelled
    data leaves y nothing to fix, though the class declares one."""
    unlabelled = DataInfo((1, 28, 28), None, "image")
    for method in (_build("q-wgan", num_biases=1, reg_weight=0.0), _build("q-beta-vae", num_biases=1, reg_weight=0.0),
                   _build("ctrl-binary", unlabelled), _build("imae", n_categories=0, vat_weight=0.0)):
        assert type(method).sample_y is not None and method.sample_y is None
        method.eval()
        if method.supports("fit_prior"):
            method.fit_prior(torch.rand(20, 1, 28, 28) * 2 - 1, None)
        with torch.no_grad(), pytest.raises(Unsupported, match="unconditionally"):
            method.sample(3, y=0)
        with torch.no_grad():
            assert method.sample(3).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("name", list(METHODS))
def test_vector_data(name):
    info = DataInfo((16,), None, "vector")
    if name in VECTOR_UNSUPPORTED:  # refused at construction, with a clear message
        with pytest.raises(ConfigError, match=VECTOR_UNSUPPORTED[name]):
            _build(name, info)
        return
    method = _build(name, info, **TINY_VECTOR.get(name, {}))
    batch = Batch(torch.randn(8, 16))
    for update in method.train_step(batch, 0):
        assert all(torch.isfinite(l) for l in update.losses.values())
    with pytest.raises(Exception, match="model.net"):
        _build(name, info, **{**TINY_VECTOR.get(name, {}), "net": "conv"})


@pytest.mark.parametrize("name", list(METHODS))
def test_save_load_gives_identical_samples(tmp_path, name):
    cfg = build_config(name, "fake", overrides=tiny_overrides(name) + fast_train_overrides(2),
                       out=str(tmp_path / name))
    run = train(cfg)
    a, b = runs.load_run(run), runs.load_run(run)
    x = torch.rand(4, *a.info.shape)
    with torch.no_grad():
        try:
            sa = a.sample(6, generator=torch.Generator().manual_seed(3))
            sb = b.sample(6, generator=torch.Generator().manual_seed(3))
            assert torch.equal(sa, sb)
        except Unsupported:
            pass
        if a.supports("reconstruct"):  # GANs have no encoder
            assert torch.equal(a.reconstruct(x), b.reconstruct(x))
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k


# One configuration, one contract: what an instance offers comes from ``cls.contract(cfg, info)``
# (its variants: vector data, no categorical code, one manifold, unlabelled data), and no method
# file assigns those attributes itself (issue 43).
_VARIANTS = {"imae": dict(n_categories=0, vat_weight=0.0), "q-wgan": dict(num_biases=1, reg_weight=0.0),
             "q-beta-vae": dict(num_biases=1, reg_weight=0.0),
             "ctrl-binary": {}}


@pytest.mark.parametrize("name", list(METHODS))
def test_instance_offers_what_its_contract_says(name):
    from genae.methods.base import CAPABILITIES, SAMPLE_Y

    spec = METHODS[name]
    cases = [(IMAGE, {})]
    if name in _VARIANTS:
        cases.append((DataInfo((1, 28, 28), None, "image") if name == "ctrl-binary" else IMAGE, _VARIANTS[name]))
    if name not in VECTOR_UNSUPPORTED:
        cases.append((DataInfo((6,), 3, "vector"), TINY_VECTOR.get(name, {})))
    for info, extra in cases:
        cfg = spec.config(**{**TINY[name], **extra})
        offer = spec.cls.contract(cfg, info)
        torch.manual_seed(0)
        m = spec.build(cfg, info)
        assert (m.capabilities, m.sample_y, m.needs_labels, m.needs_balanced_batches) == \
            (offer.capabilities, offer.sample_y, offer.needs_labels, offer.needs_balanced_batches)
        assert offer.capabilities <= spec.cls.capabilities <= set(CAPABILITIES)
        assert offer.sample_y is None or offer.sample_y in SAMPLE_Y
        if info.kind == "vector":
            assert "figures" not in offer.capabilities or name.startswith("maskaae")


def test_contract_variants_change_what_is_offered():
    spec = METHODS["imae"]
    assert "cluster" not in spec.cls.contract(spec.config(**{**TINY["imae"], "n_categories": 0}), IMAGE).capabilities
    assert METHODS["q-wgan"].cls.contract(METHODS["q-wgan"].config(num_biases=1), IMAGE).sample_y is None
    unlabelled = DataInfo((1, 28, 28), None, "image")
    assert METHODS["ctrl-binary"].cls.contract(METHODS["ctrl-binary"].config(), unlabelled).sample_y is None
    multi = METHODS["ctrl-multi"].cls.contract(METHODS["ctrl-multi"].config(), IMAGE)
    assert multi.needs_labels and multi.needs_balanced_batches and multi.sample_y == "class"


def test_no_method_assigns_its_contract_attributes():
    import re
    from pathlib import Path

    import genae.methods as pkg

    pattern = re.compile(r"self\.(capabilities|sample_y|needs_labels|needs_balanced_batches|renderer)\s*=[^=]")
    for path in Path(pkg.__file__).parent.glob("*.py"):
        if path.name == "base.py":
            continue
        assert not pattern.search(path.read_text()), f"{path.name} assigns a contract attribute"


@pytest.mark.parametrize("name", list(METHODS))
def test_renderers_are_declared_and_picked_with_a_context_manager(name):
    """Every declared renderer decodes inside ``render_with`` and the previous one is back after
    it; a name not declared is ``Unsupported`` naming the choices; None changes nothing."""
    method = _build(name).eval()
    before = method.renderer
    with method.render_with(None):
        assert method.renderer == before
    for r in method.renderers:
        with method.render_with(r):
            assert method.renderer == r
            if method.supports("decode"):
                with torch.no_grad():
                    out = method.decode(torch.zeros(2, code_dim(name)))
                assert out.shape == (2, *method.info.shape)
        assert method.renderer == before
    with pytest.raises(Unsupported, match="renders with vae, lsr" if method.renderers else "one decoder"):
        with method.render_with("nonesuch"):
            pass
    assert method.renderer == before
