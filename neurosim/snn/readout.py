"""Reading labels out of an unsupervised spiking layer (Diehl & Cook 2015, Methods).

Learning never sees a label. Afterwards each excitatory neuron is assigned the class for which
its mean response over the labelled samples is highest, and a new sample is classified as the
class whose assigned neurons respond most on average.
"""

from __future__ import annotations

import numpy as np


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class of highest mean response for every neuron; -1 for neurons that never fired.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_neurons)
    labels : ndarray of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_neurons,), int64
    """
    mean = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        rows = labels == c
        if rows.any():
            mean[c] = counts[rows].mean(axis=0)
    out = mean.argmax(axis=0)
    out[counts.sum(axis=0) == 0] = -1
    return out


def predict(counts: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """Class whose assigned neurons respond most on average; -1 when no assigned neuron fired.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_neurons)
    assignments : ndarray of shape (n_neurons,), from `assign_labels`
    """
    scores = np.full((len(counts), n_classes), -np.inf)
    for c in range(n_classes):
        members = assignments == c
        if members.any():
            scores[:, c] = counts[:, members].mean(axis=1)
    pred = scores.argmax(axis=1)
    pred[~np.isfinite(scores).any(axis=1) | (counts.sum(axis=1) == 0)] = -1
    return pred


def running_accuracy(counts: np.ndarray, labels: np.ndarray, n_classes: int,
                     block: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy during training, as Diehl & Cook monitor it: label the neurons from block k-1's
    responses and score block k's samples with those labels.

    Returns
    -------
    samples_seen : ndarray of shape (n_blocks - 1,)
    accuracy : ndarray of shape (n_blocks - 1,)
    """
    seen, acc = [], []
    for start in range(block, len(counts) - block + 1, block):
        prev = slice(start - block, start)
        cur = slice(start, start + block)
        assignments = assign_labels(counts[prev], labels[prev], n_classes)
        acc.append(float(np.mean(predict(counts[cur], assignments, n_classes) == labels[cur])))
        seen.append(start + block)
    return np.array(seen), np.array(acc)
