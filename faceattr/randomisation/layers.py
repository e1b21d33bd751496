"""Which layers a model-parameter randomisation test re-initialises, and how.

Adebayo et al. (2018) re-initialise a trained network's weights layer by layer and compare the
explanations of the randomised network with the original ones: an explanation that does not
change when the parameters it should depend on are destroyed fails the sanity check. Two
orders are used (Hedström et al. 2023 call them the MPRT variants ``top_down`` and
``independent``):

- *cascading* (top-down): first the output layer, then the output layer and the one below it,
  and so on until every layer is randomised;
- *independent*: one layer at a time, every other layer keeping its trained weights.

Every re-initialisation draws from the keyed stream
``faceattr.rng.torch_generator(seed, model.name, "randomise", layer_name)``: a layer gets the
same random weights in every cascading step and in its independent step, whatever the order
and whichever other layers are randomised. Nothing here calls ``module.reset_parameters()``
(global RNG), and the caller's model is never mutated: every randomised model is a deep copy.

References
----------
J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity Checks for Saliency
Maps", NeurIPS 2018.

A. Hedström, L. Weber, D. Krakowczyk, D. Bareeva, F. Motzkus, W. Samek, S. Lapuschkin,
M. M.-C. Höhne, "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
Network Explanations and Beyond", JMLR 24(34), 2023.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from faceattr.models.base import VerificationModel
from faceattr.rng import torch_generator

__all__ = ["RANDOMISABLE_TYPES", "cascading_steps", "randomisable_layers", "randomise_layers",
           "reinitialise_module"]

RANDOMISABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
"""Module types whose parameters are re-initialised: the layers that hold learned weights.

Normalisation layers keep their trained affine parameters and running statistics (Adebayo et
al. randomise the weight layers of Inception v3; Quantus also resets normalisation layers)."""


def randomisable_layers(model: VerificationModel) -> tuple[str, ...]:
    """Return the names of the model's weight layers in forward (bottom-up) order.

    The order is the order in which the layers first run during one forward pass of a zero
    image, so "top" means "closest to the embedding" even where a network declares its modules
    in another order. A weight layer that does not run is not listed (it cannot affect a map).

    Parameters
    ----------
    model : VerificationModel

    Returns
    -------
    tuple of str
        Module names (as in :meth:`VerificationModel.named_layers`), input side first.

    Raises
    ------
    ValueError
        If the network has no weight layer.
    """
    order: list[str] = []
    handles = []
    for name, module in model.named_layers().items():
        if name and isinstance(module, RANDOMISABLE_TYPES):
            handles.append(module.register_forward_hook(
                lambda _mod, _inp, _out, name=name: order.append(name)))
    try:
        probe = torch.zeros((1, 3, model.input_size_px, model.input_size_px))
        with torch.no_grad():
            model.embed(probe)
    finally:
        for handle in handles:
            handle.remove()
    layers = tuple(dict.fromkeys(order))
    if not layers:
        raise ValueError(f"model {model.name!r} has no weight layer to randomise "
                         f"(types: {', '.join(t.__name__ for t in RANDOMISABLE_TYPES)})")
    return layers


def cascading_steps(layers: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Return the cascading (top-down) randomisation steps of layers given bottom-up.

    Step ``i`` randomises the top ``i + 1`` layers: ``(top,)``, ``(top, top - 1)``, ... and the
    last step randomises every layer.

    Parameters
    ----------
    layers : sequence of str
        Layer names in forward (bottom-up) order, e.g. from :func:`randomisable_layers`.

    Returns
    -------
    tuple of tuple of str
        One tuple of layer names per step, each listed top-down.
    """
    top_down = tuple(reversed(layers))
    return tuple(top_down[:i + 1] for i in range(len(top_down)))


def reinitialise_module(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every parameter of one weight layer from ``generator`` only.

    Convolutions get Kaiming-normal weights (fan-out, ReLU), linear layers Xavier-uniform
    weights — the initialisation of :func:`faceattr.models.train_synthetic.init_parameters` —
    and biases are drawn uniform in ``(-1/sqrt(fan_in), 1/sqrt(fan_in))``, PyTorch's default
    bias init, so every parameter of the layer changes.

    Parameters
    ----------
    module : torch.nn.Module
        An instance of one of :data:`RANDOMISABLE_TYPES`; modified in place.
    generator : torch.Generator
        The only source of random numbers.

    Raises
    ------
    TypeError
        If the module is not a weight layer.
    """
    if not isinstance(module, RANDOMISABLE_TYPES):
        raise TypeError(f"cannot randomise a {type(module).__name__}; expected one of "
                        f"{', '.join(t.__name__ for t in RANDOMISABLE_TYPES)}")
    weight, bias = module.weight, module.bias
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor")
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(weight, generator=generator)
        else:
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu",
                                    generator=generator)
        if isinstance(bias, torch.Tensor):
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(bias, -bound, bound, generator=generator)


def randomise_layers(model: VerificationModel, layer_names: Sequence[str], *,
                     seed: int) -> VerificationModel:
    """Return a copy of ``model`` whose named weight layers are re-initialised.

    Parameters
    ----------
    model : VerificationModel
        The trained model; never modified.
    layer_names : sequence of str
        Weight layers to randomise (any order; each from the stream
        ``torch_generator(seed, model.name, "randomise", name)``).
    seed : int
        The run's seed.

    Returns
    -------
    VerificationModel
        A model with a deep-copied network, the same ``name`` (methods key their random
        streams by it, so a stochastic method draws the same noise on both models and only the
        parameters differ) and the same preprocessing. ``weights_sha256`` still names the
        trained weights the copy was derived from.

    Raises
    ------
    ValueError
        If a name is not a weight layer of the model, or is repeated.
    """
    if len(set(layer_names)) != len(layer_names):
        raise ValueError(f"layer names repeat: {list(layer_names)}")
    network = copy.deepcopy(model.network)
    modules = dict(network.named_modules())
    for name in layer_names:
        if not name or name not in modules or not isinstance(modules[name], RANDOMISABLE_TYPES):
            raise ValueError(f"model {model.name!r} has no weight layer {name!r}; weight "
                             f"layers: {', '.join(randomisable_layers(model))}")
        reinitialise_module(modules[name], torch_generator(seed, model.name, "randomise", name))
    return dataclasses.replace(model, network=network)
