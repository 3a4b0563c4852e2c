"""Energy per inference under published energy models: hand-computed numbers."""

from __future__ import annotations

import pytest

from neurosim.analysis.energy import ENERGY_MODELS, energy_band, energy_nj
from neurosim.validation import InvalidParameterError


def test_fp32_by_hand():
    # 1000 MACs at 4.6 pJ + 200 events at 0.9 pJ = 4780 pJ of arithmetic; memory: one access per
    # MAC, three per event, two per unit (10 units): (1000 + 600 + 20) * 10 pJ = 16200 pJ
    e = energy_nj("fp32_45nm", macs=1000, events=200, units=10)
    assert e["energy_ops_nj"] == pytest.approx(4.78)
    assert e["energy_memory_nj"] == pytest.approx(16.2)
    assert e["energy_total_nj"] == pytest.approx(20.98)


def test_leak_costs_a_mac_per_update_on_digital_models_only():
    assert energy_nj("fp32_45nm", updates=100, leaky=True)["energy_total_nj"] == pytest.approx(
        (100 * 4.6 + 200 * 10.0) / 1000)
    # Loihi: 52 pJ per neuron update, memory folded in
    assert energy_nj("loihi", updates=100)["energy_total_nj"] == pytest.approx(5.2)


def test_truenorth_event_cost_from_46_gsops_per_watt():
    assert ENERGY_MODELS["truenorth"].event_pj == pytest.approx(21.74, abs=0.01)
    assert energy_nj("truenorth", events=1000)["energy_total_nj"] == pytest.approx(21.74,
                                                                                  abs=0.01)


def test_band_covers_every_model_and_int8_is_cheapest_arithmetic():
    band = energy_band(macs=1000)
    assert set(band) == set(ENERGY_MODELS)
    assert band["int8_45nm"]["energy_ops_nj"] < band["fp32_45nm"]["energy_ops_nj"]


def test_unknown_model_and_negative_counts_are_refused():
    with pytest.raises(InvalidParameterError, match="unknown energy model"):
        energy_nj("tpu", macs=1)
    with pytest.raises(InvalidParameterError, match="events must be >= 0"):
        energy_nj("fp32_45nm", events=-1)


def test_chip_models_charge_the_mlp_as_fp32_with_its_memory():
    mlp = {"macs": 1000, "units": 20}
    fp32 = energy_nj("fp32_45nm", **mlp)["energy_total_nj"]
    for chip in ("truenorth", "loihi"):
        assert energy_nj(chip, **mlp)["energy_total_nj"] == pytest.approx(fp32)
