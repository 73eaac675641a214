"""dSprites: the procedural grid (genae.data.dsprites) and the official-.npz reader."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genae.data import DataConfig, load_dataset
from genae.data.dsprites import (DSPRITES_NPZ, dsprites_factor_values, dsprites_factors, dsprites_split_indices,
                                 read_dsprites_npz, render_dsprites, render_dsprites_indices)
from genae.errors import ConfigError, CorruptDataset


def one(shape, scale, orientation, px, py):
    f = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return render_dsprites(torch.tensor([shape]), f(scale), f(orientation), f(px), f(py))[0, 0]


def box(rows, cols):
    m = torch.zeros(64, 64, dtype=torch.uint8)
    m[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = 255
    return m


def test_grid_count_order_and_factor_values():
    shape, scale, orient, px, py = dsprites_factor_values()
    assert (len(shape), len(scale), len(orient), len(px), len(py)) == (3, 6, 40, 32, 32)
    assert 3 * 6 * 40 * 32 * 32 == 737280
    np.testing.assert_allclose(scale.numpy(), [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], atol=1e-12)
    assert orient[0] == 0 and orient[-1] == pytest.approx(2 * math.pi)   # the official values
    assert orient[1] == pytest.approx(2 * math.pi / 39)
    assert px[0] == 0 and px[-1] == 1 and px[1] == pytest.approx(1 / 31)
    f = dsprites_factors(torch.tensor([0, 1, 32, 737279]))
    np.testing.assert_allclose(f[0].numpy(), [0, 0.5, 0, 0, 0])
    np.testing.assert_allclose(f[1].numpy(), [0, 0.5, 0, 0, 1 / 31])          # posY varies fastest
    np.testing.assert_allclose(f[2].numpy(), [0, 0.5, 0, 1 / 31, 0])
    np.testing.assert_allclose(f[3].numpy(), [2, 1.0, 2 * math.pi, 1, 1])


def test_square_masks_by_hand():
    # scale 1: half-side 10 px; centre (16 + 32·posX, 16 + 32·posY); pixel centres at k + ½.
    assert torch.equal(one(0, 1.0, 0.0, 0.0, 0.0), box((6, 25), (6, 25)))
    # scale 0.5 (half-side 5) at posX = 1 (centre column 48), posY = 0 (centre row 16)
    assert torch.equal(one(0, 0.5, 0.0, 1.0, 0.0), box((11, 20), (43, 52)))
    # a quarter turn leaves a square unchanged; posY grows downwards
    assert torch.equal(one(0, 1.0, math.pi / 2, 0.0, 0.0), box((6, 25), (6, 25)))
    assert torch.equal(one(0, 1.0, 0.0, 0.0, 1.0), box((38, 57), (6, 25)))


def test_ellipse_and_heart_masks():
    e = one(1, 1.0, 0.0, 0.5, 0.5)                     # centre (32, 32); semi-axes 10 and 5
    rows, cols = np.nonzero(e.numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (27, 36, 22, 41)
    r, c = np.arange(64)[:, None] + 0.5, np.arange(64)[None] + 0.5
    hand = ((c - 32) / 10) ** 2 + ((r - 32) / 5) ** 2 <= 1
    assert np.array_equal(e.numpy() == 255, hand)
    assert torch.equal(one(1, 1.0, math.pi / 2, 0.5, 0.5), e.T)   # a quarter turn transposes it
    h = one(2, 1.0, 0.0, 0.5, 0.5).numpy() == 255
    assert np.array_equal(h, h[:, ::-1])                # left-right symmetric
    rows, cols = np.nonzero(h)
    assert rows.min() >= 22 and rows.max() <= 41 and cols.min() >= 22 and cols.max() <= 41
    width = h.sum(1)
    assert width[rows.max()] < width[rows.min() + 3]    # the tip is at the bottom
    assert set(np.unique(one(2, 0.7, 1.0, 0.3, 0.8).numpy())) <= {0, 255}


def test_every_sprite_stays_inside_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 737280, (300,), generator=g)
    a, b = render_dsprites_indices(index), render_dsprites_indices(index)
    assert a.dtype == torch.uint8 and a.shape == (300, 1, 64, 64) and torch.equal(a, b)
    border = torch.cat([a[:, 0, 0], a[:, 0, -1], a[:, 0, :, 0], a[:, 0, :, -1]], 1)
    assert border.sum() == 0
    # extreme corners at the largest scale and a 45° turn stay inside too
    big = [one(k, 1.0, math.pi / 4, p, q) for k in range(3) for p in (0.0, 1.0) for q in (0.0, 1.0)]
    assert all(m.sum() > 0 and m[0].sum() == m[-1].sum() == m[:, 0].sum() == m[:, -1].sum() == 0 for m in big)


def test_splits_seeded_disjoint_and_subsampled():
    tr, te = dsprites_split_indices(0, "train"), dsprites_split_indices(0, "test")
    assert len(tr) == 60000 and len(te) == 10000
    assert len(np.intersect1d(tr.numpy(), te.numpy())) == 0
    assert torch.equal(tr, dsprites_split_indices(0, "train"))
    assert not torch.equal(tr[:100], dsprites_split_indices(1, "train")[:100])
    assert torch.equal(dsprites_split_indices(0, "train", 500), tr[:500])   # n takes a prefix
    with pytest.raises(ConfigError, match="data.n"):
        dsprites_split_indices(0, "train", 737280)


def test_load_dataset_dsprites():
    ds = load_dataset(DataConfig(name="dsprites", n=200, seed=3), "train")
    assert ds.x.shape == (200, 1, 64, 64) and ds.x.dtype == torch.uint8
    assert ds.num_classes == 3 and ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factors.dtype == torch.float32 and ds.factors.shape == (200, 5)
    assert torch.equal(ds.y, ds.factors[:, 0].long())
    idx = dsprites_split_indices(3, "train", 200)
    assert torch.equal(ds.x, render_dsprites_indices(idx))


def _write_npz(path, index, imgs=None):
    f = dsprites_factors(torch.as_tensor(index)).numpy()
    sizes = (3, 6, 40, 32, 32)
    classes = np.stack(np.unravel_index(index, sizes), 1)
    classes = np.concatenate([np.zeros((len(index), 1), np.int64), classes], 1)
    values = np.concatenate([np.ones((len(index), 1)), f], 1)
    values[:, 1] += 1                                      # the official shape values are 1, 2, 3
    if imgs is None:
        imgs = (render_dsprites_indices(torch.as_tensor(index))[:, 0].numpy() // 255).astype(np.uint8)
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=values)


def test_npz_reader_matches_the_grid_and_the_splits(tmp_path):
    train, test = dsprites_split_indices(0, "train", 20).numpy(), dsprites_split_indices(0, "test").numpy()
    others = np.setdiff1d(np.arange(1000), np.concatenate([train, test]))[:5]
    index = np.concatenate([train[[7, 2, 11]], test[[4, 0]], others])[::-1].copy()   # shuffled subset
    _write_npz(tmp_path / DSPRITES_NPZ, index)
    imgs, idx = read_dsprites_npz(tmp_path / DSPRITES_NPZ)
    assert np.array_equal(idx, index) and imgs.shape == (10, 64, 64)
    cfg = DataConfig(name="dsprites-npz", root=str(tmp_path), n=20)
    tr, te = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    # rows go to the split of their cell, in that split's order, as in `dsprites`
    assert torch.equal(dsprites_factors(torch.as_tensor(train[[2, 7, 11]])).float(), tr.factors)
    assert torch.equal(dsprites_factors(torch.as_tensor(test[[0, 4]])).float(), te.factors)
    assert torch.equal(tr.x, render_dsprites_indices(torch.as_tensor(train[[2, 7, 11]])))
    assert tr.y.tolist() == tr.factors[:, 0].long().tolist() and tr.num_classes == 3
    assert len(tr.files) == 1 and list(tr.files.values())[0] != ""


def test_npz_reader_rejects_bad_files(tmp_path):
    p = tmp_path / DSPRITES_NPZ
    np.savez(p, imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(CorruptDataset, match="latents_classes"):
        read_dsprites_npz(p)
    _write_npz(p, np.array([5, 5]))
    with pytest.raises(CorruptDataset, match="more than once"):
        read_dsprites_npz(p)
    _write_npz(p, np.array([1, 2]), imgs=np.full((2, 64, 64), 255, np.uint8))
    with pytest.raises(CorruptDataset, match="binary"):
        read_dsprites_npz(p)
    p.write_bytes(b"not a zip")
    with pytest.raises(CorruptDataset):
        read_dsprites_npz(p)


def test_npz_missing_names_the_file_and_url(tmp_path):
    from genae.errors import DatasetNotFound
    with pytest.raises(DatasetNotFound, match="deepmind/dsprites-dataset"):
        load_dataset(DataConfig(name="dsprites-npz", root=str(tmp_path)), "train")
