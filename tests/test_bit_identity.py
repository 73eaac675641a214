"""Every registered method trains to bit-identical weights before and after a refactor.

``fixtures/weight_digests.json`` holds the SHA-256 of every weight tensor of every method (tiny
config, MLP and conv networks, 3 steps on ``fake`` data) as trained by the main *before* the engine
refactor of issue 25 (its commit is recorded in the file). Float results depend on the CPU's
kernels, so the comparison runs on the machine kind the digests were made on and is skipped, with
the reason, elsewhere.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import NETS, TINY
from fixtures.make_weight_digests import digests, machine

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "weight_digests.json").read_text())
CASES = [(m, v) for m in TINY for v in NETS[m]]

# Bit-identity is only meaningful where the kernels are the same: on another CPU model, ISA or
# torch the weights differ in their last bits for reasons that have nothing to do with genae. One
# skip for the whole module (not one per case), saying why.
if machine() != FIXTURE["machine"]:
    pytest.skip(f"bit-identity digests compare only on the machine kind they were made on "
                f"({FIXTURE['machine']}); this is {machine()}. Every other test checks the same "
                "training with tolerances", allow_module_level=True)


@pytest.mark.parametrize("method, variant", CASES)
def test_weights_are_bit_identical_to_the_pre_refactor_main(tmp_path, method, variant):
    want = FIXTURE["runs"].get(f"{method}/{variant}")
    if want is None:
        pytest.fail(f"{method}/{variant} has no recorded digest; a new method gets one when it is "
                    "added (run tests/fixtures/make_weight_digests.py on the commit that adds it)")
    got = digests(method, variant, tmp_path)
    changed = sorted(k for k in want if got.get(k) != want[k])
    assert got.keys() == want.keys() and not changed, f"weights changed: {changed[:5]}"
