"""Labelling neurons and classifying from their spike counts, by hand."""

from __future__ import annotations

import numpy as np

from neurosim.snn.readout import assign_labels, predict, running_accuracy


def test_assign_and_predict_by_hand():
    counts = np.array([[5, 0, 1, 0], [4, 1, 0, 0], [0, 6, 1, 0], [1, 5, 3, 0]])
    labels = np.array([0, 0, 1, 1])
    # neuron 0 answers class 0 (mean 4.5 vs 0.5), neuron 1 class 1, neuron 2 class 1 (2 vs 0.5),
    # neuron 3 never fired
    assignments = assign_labels(counts, labels, 3)
    assert assignments.tolist() == [0, 1, 1, -1]
    new = np.array([[3, 0, 0, 9], [0, 2, 2, 0], [0, 0, 0, 0]])
    assert predict(new, assignments, 3).tolist() == [0, 1, -1]


def test_running_accuracy_uses_the_previous_block():
    counts = np.tile(np.eye(2, dtype=int), (4, 1))  # neuron k fires for class k
    labels = np.tile([0, 1], 4)
    seen, acc = running_accuracy(counts, labels, 2, block=2)
    assert seen.tolist() == [4, 6, 8] and acc.tolist() == [1.0, 1.0, 1.0]
