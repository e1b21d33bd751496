"""Pairs listed in a CSV or TSV file, over photos in a folder (the ``pairs_csv`` source).

Most face datasets ship their verification protocol as a table of (image_a, image_b, same)
rows with image paths relative to the dataset's folder. This source reads such a table::

    image_a,image_b,same
    alice/0001.jpg,alice/0002.jpg,1
    alice/0001.jpg,bob/0003.jpg,0

The column names are declared (defaults ``image_a``, ``image_b``, ``same``); ``same`` accepts
``1``/``0``, ``true``/``false``, ``same``/``different`` and ``genuine``/``impostor`` (any case).
Identities come from two declared columns, or else from each image's folder name. The
delimiter follows the file's extension (``.csv``: comma, ``.tsv``: tab) unless declared.

The file is read completely when the source is built and every problem is a one-line error
naming ``file:line`` and the fix: a missing column (the header is listed), a bad label, a path
that leaves the root, a label that contradicts the identities, a duplicate pair, an empty file
and — for the pairs used — a missing image. Pairs keep file order; ``n_pairs`` keeps the first
n. Photos are loaded, aligned and hashed (file bytes, for the manifest) by
:class:`~faceattr.data.folder_pairs.PhotoSource`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Any

from faceattr.config import ProtocolError, TableReader
from faceattr.data.alignment import ALIGNMENTS
from faceattr.data.folder_pairs import PhotoSource
from faceattr.data.pairs import Pair, PairSource, content_pair_id
from faceattr.errors import InputError, MissingFileError
from faceattr.integrity import check_safe_name
from faceattr.io import read_user_text

__all__ = ["DELIMITERS", "EXTENSION_DELIMITERS", "SAME_VALUES", "CsvPairSource", "CsvRow",
           "build_pairs_csv_source", "parse_pairs_csv", "read_pairs_csv_params"]

SAME_VALUES: Mapping[str, bool] = MappingProxyType({
    "1": True, "0": False, "true": True, "false": False, "same": True, "different": False,
    "genuine": True, "impostor": False})
"""Accepted values of the ``same`` column (compared in lower case, surrounding spaces ignored)."""

EXTENSION_DELIMITERS: Mapping[str, str] = MappingProxyType({".csv": ",", ".tsv": "\t"})
"""The delimiter implied by a pairs file's extension."""

DELIMITERS: tuple[str, ...] = (",", "\t", ";")
"""Delimiters that may be declared."""

_SAME_HINT = "use 1/0, true/false, same/different or genuine/impostor"


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row of a pairs file, as written (paths normalised, label parsed).

    Attributes
    ----------
    line_no : int
        The row's line in the file (1-based; the last line of a quoted multi-line row).
    image_a, image_b : str
        POSIX paths relative to the root (``./`` and doubled slashes removed).
    is_genuine : bool
        The parsed ``same`` value.
    identity_a, identity_b : str or None
        The identity columns' values, ``None`` when no identity columns are declared.
    """

    line_no: int
    image_a: str
    image_b: str
    is_genuine: bool
    identity_a: str | None
    identity_b: str | None


def delimiter_for(pairs_file: Path, declared: str | None) -> str:
    """The delimiter of ``pairs_file``: ``declared``, else the one its extension implies.

    Raises
    ------
    faceattr.errors.InputError
        A declared delimiter outside :data:`DELIMITERS`, or none declared and an extension other
        than ``.csv`` / ``.tsv``.
    """
    if declared is not None:
        if declared not in DELIMITERS:
            raise InputError(f"delimiter {declared!r} is not supported; use one of "
                             f"{', '.join(repr(d) for d in DELIMITERS)}")
        return declared
    suffix = Path(pairs_file).suffix.lower()
    if suffix not in EXTENSION_DELIMITERS:
        raise InputError(f"{pairs_file}: cannot tell the delimiter from the extension "
                         f"{suffix or '(none)'!r}; name the file .csv or .tsv, or declare "
                         "delimiter = \",\" or \"\\t\"")
    return EXTENSION_DELIMITERS[suffix]


def _relative_image(cell: str, where: str, column: str) -> str:
    # a POSIX path inside the root: no absolute path, drive, backslash root or '..'
    if not cell:
        raise InputError(f"{where}: empty {column} path; give the image's path relative to root")
    parts = cell.replace("\\", "/").split("/")
    if (cell.startswith(("/", "\\")) or PureWindowsPath(cell).drive or ".." in parts):
        raise InputError(f"{where}: {column} path {cell!r} escapes the root; give paths "
                         "relative to root, inside it (no leading '/', drive or '..')")
    normalised = PurePosixPath(cell).as_posix()
    if normalised in ("", "."):
        raise InputError(f"{where}: {column} path {cell!r} names no file; give the image's "
                         "path relative to root")
    return normalised


def _column(header: list[str], name: str, key: str, path: Path, line_no: int) -> int:
    count = header.count(name)
    if count == 0:
        listed = ", ".join(repr(h) for h in header)
        raise InputError(f"{path}:{line_no}: no column {name!r} (header: {listed}); rename the "
                         f"column or declare {key} = \"<name>\"")
    if count > 1:
        raise InputError(f"{path}:{line_no}: column {name!r} appears {count} times in the "
                         "header; give each column a distinct name")
    return header.index(name)


def parse_pairs_csv(pairs_file: Path, *, delimiter: str | None = None,
                    column_a: str = "image_a", column_b: str = "image_b",
                    column_same: str = "same", column_identity_a: str | None = None,
                    column_identity_b: str | None = None) -> list[CsvRow]:
    """Read a pairs file into rows, in file order, checking everything that needs no images.

    Parameters
    ----------
    pairs_file : pathlib.Path
        The CSV/TSV file (UTF-8, an optional byte-order mark is ignored). The first non-blank
        line is the header; blank lines are skipped; extra columns are ignored.
    delimiter : str or None
        One of :data:`DELIMITERS`; ``None``: from the extension (:data:`EXTENSION_DELIMITERS`).
    column_a, column_b, column_same : str
        Header names of the probe path, the partner path and the label.
    column_identity_a, column_identity_b : str or None
        Header names of the identities (both or neither); ``None``: no identity columns.

    Returns
    -------
    list of CsvRow

    Raises
    ------
    faceattr.errors.MissingFileError
        The file does not exist.
    faceattr.errors.InputError
        One line naming ``file:line``: not CSV, missing column (with the header), a row with
        fewer fields than the header, an empty or escaping path, a bad ``same`` value, an image
        paired with itself, an identity that contradicts the label (identity columns), a
        duplicate pair, or an empty file.
    """
    path = Path(pairs_file)
    if (column_identity_a is None) != (column_identity_b is None):
        raise InputError(f"{path}: declare both column_identity_a and column_identity_b, or "
                         "neither (identities then come from the image folders)")
    sep = delimiter_for(path, delimiter)
    text = read_user_text(path, "pairs file", "give the path of the CSV/TSV pairs file")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=sep,
                        strict=True)
    header: list[str] | None = None
    columns: list[int] = []
    rows: list[CsvRow] = []
    first_seen: dict[tuple[str, str], int] = {}
    try:
        for cells in reader:
            line_no = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells]
            if header is None:
                header = cells
                names = [(column_a, "column_a"), (column_b, "column_b"),
                         (column_same, "column_same")]
                if column_identity_a is not None and column_identity_b is not None:
                    names += [(column_identity_a, "column_identity_a"),
                              (column_identity_b, "column_identity_b")]
                columns = [_column(header, n, key, path, line_no) for n, key in names]
                continue
            rows.append(_row(cells, header, columns, path, line_no, first_seen))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not valid "
                         f"{'TSV' if sep == chr(9) else 'CSV'} ({exc}); fix the quoting or "
                         "the delimiter") from None
    if header is None:
        raise InputError(f"{path}: empty pairs file (no header); write a header line "
                         f"{sep.join([column_a, column_b, column_same])!r} and one row per pair")
    if not rows:
        raise InputError(f"{path}: no pairs after the header; add one row per pair")
    return rows


def _row(cells: list[str], header: list[str], columns: list[int], path: Path, line_no: int,
         first_seen: dict[tuple[str, str], int]) -> CsvRow:
    where = f"{path}:{line_no}"
    if len(cells) < len(header):
        raise InputError(f"{where}: {len(cells)} field(s), the header has {len(header)}; "
                         "check the delimiter and fill every column")
    image_a = _relative_image(cells[columns[0]], where, header[columns[0]])
    image_b = _relative_image(cells[columns[1]], where, header[columns[1]])
    raw_same = cells[columns[2]]
    if raw_same.lower() not in SAME_VALUES:
        raise InputError(f"{where}: {header[columns[2]]} = {raw_same!r} is not a pair label; "
                         f"{_SAME_HINT}")
    is_genuine = SAME_VALUES[raw_same.lower()]
    if image_a == image_b:
        raise InputError(f"{where}: pairs image {image_a!r} with itself; a pair needs two "
                         "different images")
    identity_a = identity_b = None
    if len(columns) == 5:
        identity_a, identity_b = cells[columns[3]], cells[columns[4]]
        if not identity_a or not identity_b:
            raise InputError(f"{where}: empty identity; fill columns {header[columns[3]]!r} "
                             f"and {header[columns[4]]!r}")
        if is_genuine != (identity_a == identity_b):
            relation = "differ" if is_genuine else "are equal"
            raise InputError(f"{where}: {header[columns[2]]} = {raw_same!r} but the identities "
                             f"{relation} ({identity_a!r} / {identity_b!r}); fix the label or "
                             "the identity columns")
    key = (image_a, image_b)
    if key in first_seen:
        raise InputError(f"{where}: duplicate pair {image_a} / {image_b} (first listed on line "
                         f"{first_seen[key]}); list each pair once")
    first_seen[key] = line_no
    return CsvRow(line_no=line_no, image_a=image_a, image_b=image_b, is_genuine=is_genuine,
                  identity_a=identity_a, identity_b=identity_b)


@dataclass(frozen=True)
class CsvPairSource(PhotoSource):
    """Pairs from a CSV/TSV pairs file over photos under ``root``, in file order.

    Parameters
    ----------
    root : pathlib.Path
        Folder the image paths are relative to.
    pairs_file : pathlib.Path
        The pairs table (see :func:`parse_pairs_csv`).
    delimiter : str or None
        Declared delimiter; ``None``: from the extension.
    column_a, column_b, column_same : str
        Column names of the probe path, partner path and label.
    column_identity_a, column_identity_b : str or None
        Column names of the identities; ``None``: each image's folder name is its identity.
    n_pairs : int
        Keep the first ``n_pairs`` pairs; 0 keeps all.
    alignment, size, min_side_px
        See :class:`~faceattr.data.folder_pairs.PhotoSource`.
    name : str
        Source name (a safe name; prefixes the pair ids and names the manifest's source).

    Raises
    ------
    faceattr.errors.InputError
        Everything :func:`parse_pairs_csv` refuses; an image outside an identity folder or a
        label contradicting the folders (no identity columns); ``n_pairs`` above the pairs
        listed.
    faceattr.errors.MissingFileError
        The root, the pairs file or an image of the pairs used is missing (the first one, with
        its line, and how many).
    """

    pairs_file: Path = Path("pairs.csv")
    delimiter: str | None = None
    column_a: str = "image_a"
    column_b: str = "image_b"
    column_same: str = "same"
    column_identity_a: str | None = None
    column_identity_b: str | None = None
    n_pairs: int = 0
    name: str = "pairs_csv"
    _pairs: list[Pair] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_safe_name("pairs_csv source name", self.name)
        if self.n_pairs < 0:
            raise InputError(f"n_pairs must be >= 0 (0 = all), got {self.n_pairs}")
        path = Path(self.pairs_file)
        rows = parse_pairs_csv(path, delimiter=self.delimiter, column_a=self.column_a,
                               column_b=self.column_b, column_same=self.column_same,
                               column_identity_a=self.column_identity_a,
                               column_identity_b=self.column_identity_b)
        pairs = [self._pair(row, path) for row in rows]
        if self.n_pairs > len(pairs):
            raise InputError(f"{path}: lists {len(pairs)} pair(s), fewer than n_pairs = "
                             f"{self.n_pairs}; lower n_pairs (0 = all)")
        used = rows[:self.n_pairs] if self.n_pairs else rows
        missing = [(row.line_no, image_id) for row in used
                   for image_id in (row.image_a, row.image_b)
                   if not (Path(self.root) / image_id).is_file()]
        if missing:
            line_no, image_id = missing[0]
            n_missing = len({image_id for _, image_id in missing})
            raise MissingFileError(f"{path}:{line_no}: image not found: "
                                   f"{Path(self.root) / image_id} ({n_missing} listed image(s) "
                                   "missing); restore the files or point root at the folder "
                                   "the paths are relative to")
        self._pairs.extend(pairs[:len(used)])

    def _pair(self, row: CsvRow, path: Path) -> Pair:
        if row.identity_a is not None and row.identity_b is not None:
            identity_a, identity_b = row.identity_a, row.identity_b
        else:
            identity_a = PurePosixPath(row.image_a).parent.name
            identity_b = PurePosixPath(row.image_b).parent.name
            where = f"{path}:{row.line_no}"
            for image_id, identity in ((row.image_a, identity_a), (row.image_b, identity_b)):
                if not identity:
                    raise InputError(f"{where}: image {image_id!r} is not inside an identity "
                                     "folder; put images in <root>/<identity>/ or declare "
                                     "column_identity_a and column_identity_b")
            if row.is_genuine != (identity_a == identity_b):
                relation = ("in different identity folders" if row.is_genuine
                            else "in one identity folder")
                raise InputError(f"{where}: {self.column_same} = "
                                 f"{'genuine' if row.is_genuine else 'impostor'} but the images "
                                 f"are {relation} ({identity_a!r} / {identity_b!r}); fix the "
                                 "label, or declare column_identity_a and column_identity_b if "
                                 "folders are not identities")
        return Pair(pair_id=content_pair_id(self.name, row.image_a, row.image_b),
                    image_a=row.image_a, image_b=row.image_b, identity_a=identity_a,
                    identity_b=identity_b, is_genuine=row.is_genuine)

    def pairs(self) -> list[Pair]:
        """The listed pairs (the first ``n_pairs`` when set), in file order."""
        return list(self._pairs)


def read_pairs_csv_params(reader: TableReader, base_dir: Path) -> dict[str, Any]:
    """Read a ``[data]`` table with ``source = "pairs_csv"`` strictly (no disk access).

    Keys: ``root`` and ``pairs_file`` (required; relative paths are taken from ``base_dir``,
    the protocol's folder), ``delimiter`` (``"auto"``: from the extension, or one of
    :data:`DELIMITERS`), ``column_a`` / ``column_b`` / ``column_same`` (defaults ``image_a``,
    ``image_b``, ``same``), ``column_identity_a`` / ``column_identity_b`` (both or neither),
    ``n_pairs`` (0 = all), ``alignment`` (default ``center``) and ``size_px`` (default 160).
    The caller's reader refuses unknown keys (:meth:`~faceattr.config.TableReader.finish`).

    Parameters
    ----------
    reader : faceattr.config.TableReader
        The ``[data]`` table.
    base_dir : pathlib.Path
        The folder relative ``root`` and ``pairs_file`` are taken from.

    Returns
    -------
    dict
        JSON-ready parameters for :func:`build_pairs_csv_source` (absolute paths; the
        delimiter resolved to its character; absent identity columns as ``None``).

    Raises
    ------
    faceattr.config.ProtocolError
        One line naming the key, the value and what is allowed.
    """
    # every key is read before any is checked, so a recording reader lists them all
    root, pairs_file = reader.text("root"), reader.text("pairs_file")
    declared = reader.text("delimiter", default="auto", allowed=["auto", *DELIMITERS])
    columns = {key: reader.text(key, default=default) for key, default in
               (("column_a", "image_a"), ("column_b", "image_b"), ("column_same", "same"))}
    identity = {key: reader.text(key, default="") or None
                for key in ("column_identity_a", "column_identity_b")}
    rest = {"n_pairs": reader.integer("n_pairs", default=0, minimum=0),
            "alignment": reader.text("alignment", default="center", allowed=list(ALIGNMENTS)),
            "size_px": reader.integer("size_px", default=160, minimum=8, maximum=1024)}
    pairs_path = (Path(base_dir) / Path(pairs_file).expanduser()).resolve()
    try:
        delimiter = delimiter_for(pairs_path, None if declared == "auto" else declared)
    except InputError as exc:
        raise ProtocolError(f"{reader.where}: {exc}") from None
    if (identity["column_identity_a"] is None) != (identity["column_identity_b"] is None):
        raise ProtocolError(f"{reader.where}: declare both column_identity_a and "
                            "column_identity_b, or neither (identities then come from the "
                            "image folders)")
    named = [*columns.values(), *(v for v in identity.values() if v is not None)]
    if any(not name for name in named) or len(set(named)) != len(named):
        raise ProtocolError(f"{reader.where}: the declared columns must be distinct non-empty "
                            f"names, got {', '.join(repr(n) for n in named)}")
    return {"root": str((Path(base_dir) / Path(root).expanduser()).resolve()),
            "pairs_file": str(pairs_path), "delimiter": delimiter, **columns, **identity,
            **rest}


def build_pairs_csv_source(params: dict[str, Any], seed: int) -> PairSource:
    """Build the source of :func:`read_pairs_csv_params`'s parameters (reads the pairs file and
    checks the images of the pairs used).

    Parameters
    ----------
    params : dict
        As returned by :func:`read_pairs_csv_params`.
    seed : int
        Unused: the file fixes the pairs and their order (accepted for the builders' common
        signature).

    Returns
    -------
    CsvPairSource
    """
    del seed
    return CsvPairSource(root=Path(params["root"]), pairs_file=Path(params["pairs_file"]),
                         delimiter=params["delimiter"], column_a=params["column_a"],
                         column_b=params["column_b"], column_same=params["column_same"],
                         column_identity_a=params["column_identity_a"],
                         column_identity_b=params["column_identity_b"],
                         n_pairs=params["n_pairs"], alignment=params["alignment"],
                         size=params["size_px"])
