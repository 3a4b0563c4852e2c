"""Spiking and Hebbian networks: the brain-like learners.

`models` holds neuron and synapse equations as documented strings (LIF, conductances, STDP),
`encoding` turns intensities into Poisson rates and presentation schedules (ON/OFF coding),
`wta` the Diehl & Cook STDP winner-take-all network and its procedure (`fit`, `label_neurons`,
`classify`), `convert` a trained bias-free ReLU MLP as integrate-and-fire neurons
(`convert_and_simulate`, `ConversionParams`), `readout` the labelling of an unsupervised layer,
`song2000` the Song, Miller & Abbott STDP neuron, `hebbian` a linear neuron under Hebb / Oja / BCM
(numpy only; the rules are `neurosim.plasticity`'s), `backend` the choice of Brian2 target,
`units` the unit-suffix namespaces, `surrogate` the numpy LIF network trained by
surrogate-gradient BPTT and `eprop` the same network trained online by e-prop.

Brian2 is imported only by the modules that simulate (``import neurosim.snn.hebbian`` does not
import it); the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "WTANetwork": "wta", "WTAParams": "wta", "TrainingRecord": "wta", "fit": "wta",
    "label_neurons": "wta", "classify": "wta",
    "SongNetwork": "song2000", "SongParams": "song2000",
    "assign_labels": "readout", "predict": "readout", "running_accuracy": "readout",
    "Schedule": "encoding", "on_off": "encoding", "poisson_rates": "encoding",
    "poisson_spikes": "encoding", "counts_per_sample": "encoding",
    "BCMParams": "hebbian", "hebb": "hebbian", "oja": "hebbian", "bcm_step": "hebbian",
    "train_rule": "hebbian", "train_bcm": "hebbian",
    "select_backend": "backend",
    "ConversionParams": "convert", "SpikeRun": "convert", "check_convertible": "convert",
    "convert_and_simulate": "convert", "normalise": "convert", "simulate": "convert",
    "poisson_input": "convert", "predict_from_counts": "convert",
    "accuracy_vs_time": "convert",
    "SurrogateParams": "surrogate", "SpikingNet": "surrogate",
    "EpropParams": "eprop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'neurosim.snn' has no attribute '{name}'")
    module = importlib.import_module(f"neurosim.snn.{_EXPORTS[name]}")
    value = getattr(module, "select" if name == "select_backend" else name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
