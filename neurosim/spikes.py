"""`Spikes`: the one type for the spikes of a population, used by every network and figure.

A population's spikes are four things: the neuron index of each spike, its time, the size of
the population (silent neurons included) and the length of the recorded window. Networks that
simulate on a grid of time steps record dense boolean rasters; `Spikes.from_dense` turns one
into this form. `Spikes.to_neo` gives Elephant / Viziphant users one ``neo.SpikeTrain`` per
neuron (Neo is imported only there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SpikesError(ValueError):
    """Spike data that do not describe a population (bad indices, times, sizes)."""


@dataclass(frozen=True)
class Spikes:
    """The spikes of one population.

    Attributes
    ----------
    i : ndarray of shape (n_spikes,), int64
        Neuron index of each spike, in [0, n_neurons).
    t : ndarray of shape (n_spikes,), float64
        Spike times in seconds, in [0, t_stop].
    t_stop : float
        End of the recorded window (seconds).
    n_neurons : int
        Size of the population (silent neurons included).
    """

    i: np.ndarray
    t: np.ndarray
    t_stop: float
    n_neurons: int

    def __post_init__(self):
        i = np.asarray(self.i).ravel()
        t = np.asarray(self.t, dtype=float).ravel()
        if i.size and not np.issubdtype(i.dtype, np.integer):
            if not np.all(i == np.round(i)):
                raise SpikesError("spike indices i must be integers")
        i = i.astype(np.int64)
        object.__setattr__(self, "i", i)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "t_stop", float(self.t_stop))
        object.__setattr__(self, "n_neurons", int(self.n_neurons))
        if len(i) != len(t):
            raise SpikesError(f"spikes: {len(i)} indices but {len(t)} times")
        if self.n_neurons < 0 or (i.size and (i.min() < 0 or i.max() >= self.n_neurons)):
            raise SpikesError(f"spike indices must lie in [0, {self.n_neurons})")
        if not np.isfinite(self.t_stop) or not np.all(np.isfinite(t)):
            raise SpikesError("spike times and t_stop must be finite")

    @classmethod
    def from_dense(cls, raster: np.ndarray, dt_s: float, t0_s: float = 0.0) -> Spikes:
        """Spikes from a boolean raster of shape (n_steps, n_neurons): a spike in step k is
        placed at ``t0_s + k * dt_s``; the window ends after the last step."""
        raster = np.asarray(raster, dtype=bool)
        if raster.ndim != 2:
            raise SpikesError(f"a dense raster must be 2-D (steps, neurons), has shape "
                              f"{raster.shape}")
        steps, neurons = np.nonzero(raster)
        return cls(neurons, t0_s + steps * float(dt_s), t0_s + raster.shape[0] * float(dt_s),
                   raster.shape[1])

    @property
    def n_spikes(self) -> int:
        return int(self.i.size)

    def counts(self) -> np.ndarray:
        """Spikes per neuron, shape (n_neurons,)."""
        return np.bincount(self.i, minlength=self.n_neurons)

    def rates_hz(self) -> np.ndarray:
        """Mean firing rate of each neuron over the window (Hz), shape (n_neurons,)."""
        return self.counts() / self.t_stop if self.t_stop > 0 else np.zeros(self.n_neurons)

    def window(self, t_start: float, t_stop: float) -> Spikes:
        """The spikes in [t_start, t_stop), times shifted to start at 0."""
        keep = (self.t >= t_start) & (self.t < t_stop)
        return Spikes(self.i[keep], self.t[keep] - t_start, t_stop - t_start, self.n_neurons)

    def arrays(self) -> dict[str, np.ndarray]:
        """The four arrays written to ``spikes_<pop>.npz``."""
        return {"i": self.i, "t": self.t, "t_stop": np.array(self.t_stop),
                "n_neurons": np.array(self.n_neurons)}

    def to_neo(self) -> list:
        """One ``neo.SpikeTrain`` per neuron (seconds, from 0 to ``t_stop``), silent neurons
        included as empty trains; needs the ``analysis`` extra (Neo)."""
        import neo
        import quantities as pq

        order = np.argsort(self.i, kind="stable")
        bounds = np.searchsorted(self.i[order], np.arange(self.n_neurons + 1))
        return [neo.SpikeTrain(np.sort(self.t[order[bounds[k]: bounds[k + 1]]]) * pq.s,
                               t_start=0 * pq.s, t_stop=self.t_stop * pq.s)
                for k in range(self.n_neurons)]
