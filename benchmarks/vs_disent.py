"""genae's DCI, SAP, MIG and FactorVAE score against disent 0.8.0's on the same codes (issue 44).

disent is not installed (it needs torchvision): its metric files are loaded from an unpacked wheel
with the few imports they need stubbed, and run on a synthetic, partly disentangled code.

    pip download disent==0.8.0 --no-deps -d /tmp/disent && (cd /tmp/disent && mkdir -p src && unzip -q -o disent-0.8.0-py3-none-any.whl -d src)
    python benchmarks/vs_disent.py /tmp/disent/src/disent

docs/results.md (issue 44) holds what it printed.
"""
import sys, types, functools, importlib.util, warnings
import numpy as np
warnings.simplefilter("ignore")
ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/disent/src/disent"


def pkg(name, path=None):
    m = types.ModuleType(name)
    if path: m.__path__ = [path]
    sys.modules[name] = m
    return m
pkg("disent", ROOT); pkg("disent.metrics", ROOT + "/metrics")
ds = pkg("disent.dataset"); ds.DisentDataset = object
u = pkg("disent.util"); u.to_numpy = np.asarray
fn = pkg("disent.util.function"); fn.wrapped_partial = lambda f, **kw: functools.partial(f, **kw)
def load(name):
    spec = importlib.util.spec_from_file_location(f"disent.metrics.{name}", f"{ROOT}/metrics/{name}.py")
    mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod); return mod
utils = load("utils"); sys.modules["disent.metrics"].utils = utils
_dci, _sap, _fv, _mig = load("_dci"), load("_sap"), load("_factor_vae"), load("_mig")

from genae.metrics import disentangle_scores as S, disentangle as G

rng = np.random.default_rng(0)
sizes = (3, 6, 10, 8)
def factors(n): return np.stack([rng.integers(0, k, n) for k in sizes], 1)
A = rng.standard_normal((4, 6)) * 0.25
def encode(v):  # a partly disentangled code: copies + some mixing + noise dims
    base = np.concatenate([v / np.array(sizes), np.zeros((len(v), 2))], 1)
    return base + (v / np.array(sizes)) @ A + 0.05 * rng.standard_normal((len(v), 6))
v = factors(15000); z = encode(v)
tr, te = S.train_test_indices(len(z), 10000 / 15000, 0)   # 10,000 train, 5,000 test like dlib
print("n_train", len(tr), "n_test", len(te))

# DCI with gradient-boosted trees: same split, same classifier
mine = S.dci(z, v, importance="gbt", train_fraction=10000 / 15000, seed=0)
ref = _dci._compute_dci(z[tr].T, v[tr].T, z[te].T, v[te].T)
print("DCI gbt   genae:", {k: round(mine[k], 6) for k in ("disentanglement", "completeness", "informativeness", "informativeness_train")})
print("DCI gbt  disent:", {k: round(float(x), 6) for k, x in ref.items()})
lasso = S.dci(z, v, train_fraction=10000 / 15000, seed=0)
print("DCI lasso genae:", {k: round(lasso[k], 6) for k in ("disentanglement", "completeness", "informativeness", "nrmse")})
print("  disent D/C formulas on genae's lasso importance:", round(float(_dci._disentanglement(lasso["importance"])), 6),
      round(float(_dci._completeness(lasso["importance"])), 6))

# SAP, discrete factors (LinearSVC) and continuous
mine = S.sap(z, v, train_fraction=10000 / 15000, seed=0)
ref = _sap._compute_sap(z[tr].T, v[tr].T, z[te].T, v[te].T, False)
print("SAP discrete genae", round(mine["sap"], 6), "disent", round(float(ref["sap.score"]), 6))
refm = _sap._compute_score_matrix(z[tr].T, v[tr].T, z[te].T, v[te].T, False)
print("   score matrix max |diff|", np.abs(refm - mine["scores"]).max())
mc = S.sap(z, v, continuous=True, train_fraction=10000 / 15000, seed=0)
rc = _sap._compute_sap(z[tr].T, v[tr].T, z[te].T, v[te].T, True)
print("SAP continuous genae (R2 of train line on test)", round(mc["sap"], 6), "disent (corr^2 on train)", round(float(rc["sap.score"]), 6))

# MIG (genae.metrics.mig) vs disent's histogram MIG
print("MIG genae", round(G.mig(z[tr], v[tr])["mig"], 6), "disent", round(float(_mig._compute_mig(z[tr].T, v[tr].T)["mig.discrete_score"]), 6))

# FactorVAE with a fake ground-truth dataset that "renders" codes directly
class GT:
    num_factors = len(sizes)
    def __init__(self, r): self.r = r
    def sample_factors(self, n): return np.stack([self.r.integers(0, k, n) for k in sizes], 1)
class FakeData:
    def __init__(self, r): self.gt_data = GT(r)
    def dataset_batch_from_factors(self, f, mode): return f
    def dataset_sample_batch(self, n, mode): return self.gt_data.sample_factors(n)
noise = np.random.default_rng(1)
def rep(f): return encode_fixed(f)
def encode_fixed(f):
    f = np.asarray(f)
    base = np.concatenate([f / np.array(sizes), np.zeros((len(f), 2))], 1)
    return base + (f / np.array(sizes)) @ A + 0.05 * noise.standard_normal((len(f), 6))
np.random.seed(0)
ref = _fv.metric_factor_vae.compute(FakeData(np.random.default_rng(2)), lambda x: rep(x).T if False else rep(x))
print("FactorVAE disent", {k: round(float(x), 4) for k, x in ref.items()})
for seed in (0, 1, 2):
    out = S.factorvae_score(rep, sizes, np.random.default_rng(seed))
    print("FactorVAE genae seed", seed, round(out["score"], 4), "train", round(out["train_accuracy"], 4), "active", out["num_active_dims"])
