r"""How well a feedback-alignment network's updates point along the true gradient.

Feedback alignment works because the forward weights come to align with the fixed random
feedback matrices, so the update the rule makes (``delta`` sent back through B) falls within
90 degrees of the one backpropagation would make (Lillicrap et al. 2016, Nat. Commun. 7:13276,
Fig. 2; Nøkland 2016 for DFA). `alignment_angles` measures that angle for one batch:

.. math:: \angle_l = \arccos \frac{\langle \Delta W_l^{FA}, \Delta W_l^{BP} \rangle}
                               {\lVert \Delta W_l^{FA} \rVert \, \lVert \Delta W_l^{BP} \rVert}

The training itself is `neurosim.ann.train` on an ``MLP(..., feedback="fa")``: the feedback
pathway is part of the model (`neurosim.ann.mlp.Feedback`), not of the training loop.
"""

from __future__ import annotations

import numpy as np

from neurosim.ann.functions import Loss
from neurosim.ann.mlp import MLP, backward, forward, loss_and_delta


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two arrays seen as flat vectors, in degrees (90 when either is zero)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return 90.0
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def rule_and_true_gradients(
    model: MLP, X, y, loss: str | Loss
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weight updates of `model`'s own feedback rule and the exact gradients, one batch.

    Parameters
    ----------
    model : MLP
    X : array_like of shape (n_samples, n_inputs)
    y : array_like of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or Loss

    Returns
    -------
    rule : list of ndarray, shapes as ``model.weights``
        What the model's feedback pathway (FA, DFA or backprop) would descend along.
    exact : list of ndarray, shapes as ``model.weights``
        The loss gradient (backpropagation through the transposed weights).
    """
    spec = model.check_loss(loss)
    cache = forward(model.as_input(X), model.weights, model.biases, model.activations,
                    activate_output=not spec.from_logits)
    _, delta = loss_and_delta(cache, np.asarray(y), spec, model.output_activation)
    with_bias = model.biases is not None
    rule, _ = backward(cache, delta, model.weights, model.activations, with_bias)
    # a plain list carries no feedback pathway: backward falls back to the transposed weights
    exact, _ = backward(cache, delta, list(model.weights), model.activations, with_bias)
    return rule, exact


def alignment_angles(model: MLP, X, y, loss: str | Loss) -> list[float]:
    """Angle between the feedback rule's update and the true gradient, per hidden layer.

    Parameters
    ----------
    model : MLP
        Any network; for ``feedback="backprop"`` every angle is 0.
    X : array_like of shape (n_samples, n_inputs)
    y : array_like of shape (n_samples,) or (n_samples, n_outputs)
    loss : str or Loss

    Returns
    -------
    list of float, one per hidden layer (the weights *into* hidden layer k, ``W_{k-1}``), in
    degrees: below 90 means the rule still descends the loss (the output layer's update is
    exact under every rule, so it is left out).
    """
    rule, exact = rule_and_true_gradients(model, X, y, loss)
    return [angle_deg(r, e) for r, e in zip(rule[:-1], exact[:-1], strict=True)]
