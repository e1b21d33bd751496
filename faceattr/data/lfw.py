"""LFW's official verification protocol (Huang et al. 2007) over a local image folder.

Reads ``pairs.txt`` (first line ``<folds> <pairs per class per fold>``, then for each fold that
many genuine then impostor lines) or ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (first line
``<pairs per class>``, then the genuine then the impostor lines). A genuine line is
``name  n1  n2``, an impostor line ``name1  n1  name2  n2``; image ``n`` of ``name`` is
``<root>/<name>/<name>_<n:04d>.jpg`` in the ``lfw`` or ``lfw-deepfunneled`` folder. Every listed
image must exist: a missing one is an error at construction, never a silently dropped pair.

References
----------
G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, "Labeled Faces in the Wild: A Database for
Studying Face Recognition in Unconstrained Environments", UMass Amherst TR 07-49, 2007.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceattr.data.folder_pairs import PhotoSource
from faceattr.data.pairs import Pair, content_pair_id
from faceattr.errors import InputError, MissingFileError
from faceattr.io import read_user_text

__all__ = ["LfwPairSource", "lfw_image_id", "parse_lfw_pairs"]


def lfw_image_id(name: str, number: int) -> str:
    """LFW image id ``<name>/<name>_<number:04d>.jpg``."""
    return f"{name}/{name}_{number:04d}.jpg"


def _int(token: str, path: Path, line_no: int) -> int:
    try:
        value = int(token)
    except ValueError:
        raise InputError(f"{path}:{line_no}: expected an integer, got {token!r}") from None
    if value < 1:
        raise InputError(f"{path}:{line_no}: expected a positive integer, got {value}")
    return value


def parse_lfw_pairs(pairs_file: Path) -> list[tuple[str, int, str, int, int]]:
    """Parse an LFW pairs file into ``(name_a, n_a, name_b, n_b, fold)`` rows, in file order.

    Raises
    ------
    faceattr.errors.MissingFileError
        If the file does not exist.
    faceattr.errors.InputError
        One line with the file and line number: bad header, malformed line, a genuine line where
        an impostor line is due (or the reverse), or a count that differs from the header.
    """
    path = Path(pairs_file)
    text = read_user_text(path, "LFW pairs file", "give the path of pairs.txt, "
                          "pairsDevTrain.txt or pairsDevTest.txt")
    lines = [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    if not lines:
        raise InputError(f"{path}: empty pairs file")
    header_no, header = lines[0]
    if len(header) == 2:
        n_folds, per_class = _int(header[0], path, header_no), _int(header[1], path, header_no)
    elif len(header) == 1:
        n_folds, per_class = 1, _int(header[0], path, header_no)
    else:
        raise InputError(f"{path}:{header_no}: header must be '<folds> <pairs>' (pairs.txt) or "
                         f"'<pairs>' (pairsDevTest.txt), got {' '.join(header)!r}")
    body = lines[1:]
    expected = n_folds * 2 * per_class
    if len(body) != expected:
        raise InputError(f"{path}: header announces {expected} pairs ({n_folds} fold(s) x 2 x "
                         f"{per_class}), the file lists {len(body)}")
    rows: list[tuple[str, int, str, int, int]] = []
    for index, (line_no, tokens) in enumerate(body):
        fold, within = divmod(index, 2 * per_class)
        genuine_due = within < per_class
        if len(tokens) == 3 and genuine_due:
            rows.append((tokens[0], _int(tokens[1], path, line_no), tokens[0],
                         _int(tokens[2], path, line_no), fold))
        elif len(tokens) == 4 and not genuine_due:
            if tokens[0] == tokens[2]:
                raise InputError(f"{path}:{line_no}: impostor line names one person twice")
            rows.append((tokens[0], _int(tokens[1], path, line_no), tokens[2],
                         _int(tokens[3], path, line_no), fold))
        else:
            due = "a genuine 'name n1 n2'" if genuine_due else "an impostor 'name1 n1 name2 n2'"
            raise InputError(f"{path}:{line_no}: expected {due} line, got {' '.join(tokens)!r}")
    return rows


@dataclass(frozen=True)
class LfwPairSource(PhotoSource):
    """LFW pairs from an official pairs file over a local ``lfw`` / ``lfw-deepfunneled`` folder.

    Parameters
    ----------
    root : pathlib.Path
        The folder holding ``<name>/<name>_<n:04d>.jpg`` (given by path; never downloaded).
    pairs_file : pathlib.Path
        ``pairs.txt``, ``pairsDevTrain.txt`` or ``pairsDevTest.txt``.
    folds : tuple of int or None
        Keep only these folds of ``pairs.txt`` (0-based); ``None`` keeps all.
    alignment, size, min_side_px
        See :class:`~faceattr.data.folder_pairs.PhotoSource` (``center`` suits
        lfw-deepfunneled; ``mtcnn`` at 160 px is FaceNet's input).
    name : str
        Source name.

    Raises
    ------
    faceattr.errors.MissingFileError
        If a listed image is missing (one line: the first missing path and how many).
    """

    pairs_file: Path = Path("pairs.txt")
    folds: tuple[int, ...] | None = None
    name: str = "lfw"
    _rows: list[tuple[str, int, str, int, int]] = field(default_factory=list, init=False,
                                                        repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        rows = parse_lfw_pairs(self.pairs_file)
        if self.folds is not None:
            rows = [r for r in rows if r[4] in self.folds]
        missing = sorted({image_id for a, na, b, nb, _ in rows
                          for image_id in (lfw_image_id(a, na), lfw_image_id(b, nb))
                          if not (Path(self.root) / image_id).is_file()})
        if missing:
            raise MissingFileError(f"LFW folder {self.root} lacks {len(missing)} image(s) listed "
                                   f"in {Path(self.pairs_file).name}, first: {missing[0]}; "
                                   "point root at the complete lfw (or lfw-deepfunneled) folder")
        self._rows.extend(rows)

    def pairs(self) -> list[Pair]:
        """The listed pairs, in file order."""
        out: list[Pair] = []
        for a, na, b, nb, _fold in self._rows:
            image_a, image_b = lfw_image_id(a, na), lfw_image_id(b, nb)
            out.append(Pair(pair_id=content_pair_id(self.name, image_a, image_b),
                            image_a=image_a, image_b=image_b, identity_a=a, identity_b=b,
                            is_genuine=a == b))
        return out
