"""``faceattr init``: a commented starting protocol for the user's own model and data.

The model file's format comes from its extension (``.onnx``; ``.pt``/``.pth`` TorchScript
archives; state dicts need a factory, so they are written commented out), the data folder's
kind from what it holds (``pairs.csv``/``pairs.tsv`` -> ``pairs_csv``, LFW's ``pairs.txt`` ->
``lfw``, else one sub-folder per identity -> ``folder``). Paths are written relative to the
protocol's folder (the protocol reads them that way). The methods, controls and claims are the
gate's sanity minimum on real faces; every key is documented in ``faceattr
protocol-reference``. The result is accepted by ``faceattr plan`` as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from faceattr.errors import InputError, MissingFileError

__all__ = ["init_protocol"]

_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript",
            ".ts": "torchscript", ".torchscript": "torchscript"}


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def _data_table(data_dir: Path, protocol_dir: Path, n_pairs: int, size_px: int) -> str:
    root = _relative(data_dir, protocol_dir)
    size = f"size_px = {size_px}                    # = the model's input size\n"
    for name in ("pairs.csv", "pairs.tsv"):
        if (data_dir / name).is_file():
            return (f'source = "pairs_csv"            # a table of (image_a, image_b, same)\n'
                    f'root = "{root}"\npairs_file = "{_relative(data_dir / name, protocol_dir)}"'
                    f'\nn_pairs = {n_pairs}                      # 0 = every listed pair\n'
                    'alignment = "center"               # center | mtcnn | dlib_chip\n' + size)
    if (data_dir / "pairs.txt").is_file():
        return (f'source = "lfw"\nroot = "{root}"\npairs_file = '
                f'"{_relative(data_dir / "pairs.txt", protocol_dir)}"\nn_pairs = {n_pairs}\n'
                'alignment = "mtcnn"\n' + size)
    if not any(p.is_dir() for p in data_dir.iterdir()):
        raise InputError(f"{data_dir}: holds no pairs.csv, pairs.tsv, pairs.txt nor one folder "
                         "per identity; give the folder of your pairs table or identities")
    return (f'source = "folder"                # one sub-folder of photos per identity\n'
            f'root = "{root}"\nn_pairs = {n_pairs}\ngenuine_fraction = 0.5\n'
            'alignment = "center"\n' + size)


def _model_table(model: Path, protocol_dir: Path, input_size_px: int,
                 embedding_dim: int) -> str:
    fmt = _FORMATS.get(model.suffix.lower())
    if fmt is None:
        raise InputError(f"{model}: cannot tell the model format from {model.suffix!r}; "
                         "give an .onnx file or a TorchScript .pt/.pth (for a state dict, write "
                         "[model] format = \"state_dict\" with a factory by hand)")
    return (f'format = "{fmt}"\npath = "{_relative(model, protocol_dir)}"\n'
            f"input_size_px = {input_size_px}              # the network's square input\n"
            f"embedding_dim = {embedding_dim}              # checked on the first forward\n"
            'channel_order = "rgb"            # rgb | bgr\nlayout = "nchw"                  '
            '# nchw | nhwc\nmean = [127.5, 127.5, 127.5]     # subtracted, 0-255 pixel units\n'
            "std = [128.0, 128.0, 128.0]      # divisor, 0-255 pixel units\n"
            'alignment = "center"\n'
            "min_auc = 0.95                   # the model gate: verification AUC on the pairs\n")


_BODY = '''
[falsification]                   # Theorem 3.5's test (faceattr protocol-reference)
regions = "quantile"              # area-matched S_high / S_low
q_frac = 0.10
k_per_region = 32                 # counterfactuals per region
fill = "mean"
perturbation_sigma = 0.02
verdict = "simple"                # simple (margin <= 0) | theorem (tau_high/tau_low below)
distance = "geodesic"
tau_high = 0.7                    # radians: calibrate for YOUR model before using "theorem"
tau_low = 0.45
epsilon = 0.1
test_alpha = 0.05

[execution]                       # batch sizes never change a result
pairs_per_batch = 8
forward_chunk = 64
# device = "cpu"                  # cpu | cuda | cuda:N | mps: part of the run identity
# memory_format = "contiguous"    # or "channels_last" (faster on some CPUs; identity too)

[determinism]
n_pairs = 4

[[methods]]
method = "saliency"

[[methods]]
method = "integrated_gradients"
n_steps = 32

[[methods]]
id = "inverted"
method = "inverted"
of = "saliency"

[[methods]]
method = "random"

[[methods]]
method = "constant"

[[claims]]
kind = "model_gate"
min_auc = 0.95

[[claims]]
kind = "target_sanity"
method = "saliency"
max_share = 0.0
on = "estimate"

[[claims]]
kind = "fr_at_least"
method = "inverted"
threshold = 0.5

[[claims]]
kind = "all_trivial"
method = "constant"

[[claims]]
kind = "distinct_maps"

[[claims]]
kind = "determinism"
'''


def init_protocol(out: Path, *, model: Path, data: Path, name: str | None = None,
                  input_size_px: int = 112, embedding_dim: int = 512, n_pairs: int = 100) -> Path:
    """Write a commented protocol for ``model`` and ``data`` to ``out`` (never overwrites).

    Raises
    ------
    InputError
        ``out`` exists, the model's format or the data's kind cannot be told.
    MissingFileError
        The model file or the data folder does not exist.
    """
    if out.exists():
        raise InputError(f"{out}: exists; choose another --out (faceattr init never "
                         "overwrites a protocol)")
    if not model.is_file():
        raise MissingFileError(f"{model}: model file not found")
    if not data.is_dir():
        raise MissingFileError(f"{data}: data folder not found")
    protocol_dir = out.resolve().parent
    stem = name or out.stem
    text = (f'# faceattr protocol for {model.name} on {data.name}/ (written by faceattr init; '
            'edit and pre-register)\n'
            f'[protocol]\nname = "{stem}"\ndescription = "attributions of {model.name} on '
            f'{data.name}"\nseed = 0\nalpha = 0.05\ninterval_method = "wilson"\n\n'
            f"[data]\n{_data_table(data, protocol_dir, n_pairs, input_size_px)}\n"
            f"[model]\n{_model_table(model, protocol_dir, input_size_px, embedding_dim)}"
            f"{_BODY}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
