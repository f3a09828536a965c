"""Coat (Schnabel et al., ICML 2016): self-selected training ratings and a random-exposure test
(re-exported by :mod:`painvrl.datasets`).

* :func:`load_coat` reads the ratings as implicit feedback with the 33 named item attributes.
* :func:`find_coat` returns the folder it is read from.

Its OOD split (a fixed share of the random-exposure positives as OOD validation)
is :func:`painvrl.splits.exposure_holdout`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .._util.validation import check_int
from ._find import find_data_folder
from .dataset import Dataset

__all__ = ["COAT_FOLDER", "COAT_ATTRIBUTES", "find_coat", "load_coat"]

COAT_FOLDER = "coat"
_FEATURES = Path("user_item_features") / "item_features.ascii"
_NAMES = Path("user_item_features") / "item_features_map.txt"
# The four one-hot attribute blocks of item_features.ascii, in column order:
# (name prefix in item_features_map.txt, modality name here, width).
_BLOCKS = (("gender", "gender", 2), ("jackettype", "type", 16), ("color", "colour", 13),
           ("onfrontpage", "front_page", 2))
COAT_ATTRIBUTES = tuple(m for _, m, _ in _BLOCKS)


def find_coat(path: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The Coat folder (holding ``train.ascii``), searched as :func:`load_coat` does
    (a ``FileNotFoundError`` names every place looked at)."""
    return find_data_folder(path, COAT_FOLDER, "train.ascii", "Coat")


def _read_matrix(file: Path, dtype) -> np.ndarray:
    if not file.is_file():
        raise FileNotFoundError(f"load_coat: {file} is missing")
    try:
        return np.loadtxt(file, dtype=dtype, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"load_coat: {file} is not a whitespace-separated numeric matrix "
                         f"({exc})") from None


def _read_ratings(folder: Path) -> Tuple[np.ndarray, np.ndarray]:
    """The (users x items) MNAR training and MAR test rating matrices, 0 = unrated."""
    train = _read_matrix(folder / "train.ascii", np.int64)
    test = _read_matrix(folder / "test.ascii", np.int64)
    if train.shape != test.shape:
        raise ValueError(f"load_coat: train.ascii has shape {train.shape} but test.ascii "
                         f"{test.shape} (both must be users x items)")
    for name, r in (("train.ascii", train), ("test.ascii", test)):
        if r.size and (r.min() < 0 or r.max() > 5):
            raise ValueError(f"load_coat: {folder / name} must hold ratings 1-5 (0 = unrated), "
                             f"got values in [{r.min()}, {r.max()}]")
    return train, test


def _read_attributes(folder: Path, n_items: int) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """The item attribute blocks (modality -> 0/1 matrix) and the 33 column names."""
    x = _read_matrix(folder / _FEATURES, np.float64)
    names_file = folder / _NAMES
    if not names_file.is_file():
        raise FileNotFoundError(f"load_coat: {names_file} is missing")
    names = names_file.read_text().split()  # the file has no newline after its last name
    widths = [w for _, _, w in _BLOCKS]
    if x.shape != (n_items, sum(widths)) or len(names) != sum(widths):
        raise ValueError(f"load_coat: {folder / _FEATURES} must be {n_items} x {sum(widths)} with "
                         f"as many names in {names_file.name}; got {x.shape} and {len(names)} names")
    blocks: Dict[str, np.ndarray] = {}
    start = 0
    for prefix, modality, width in _BLOCKS:
        cols = slice(start, start + width)
        if any(not n.startswith(prefix + ":") for n in names[cols]):
            raise ValueError(f"load_coat: columns {start}-{start + width - 1} of {names_file.name} "
                             f"must all be '{prefix}:...', got {names[cols]}")
        block = x[:, cols]
        if not (np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) == 1).all()):
            raise ValueError(f"load_coat: the {modality!r} block of {_FEATURES} must be one-hot "
                             f"(one 1 per item)")
        blocks[modality] = block
        start += width
    return blocks, names


def load_coat(path: Optional[Union[str, os.PathLike]] = None, *, threshold: int = 4) -> Dataset:
    """Coat as implicit feedback with its 33 named item attributes.

    290 users and 300 coats.  Each user rated 24 coats they found themselves
    (``train.ascii``: self-selected, missing not at random) and 16 coats drawn
    uniformly at random (``test.ascii``: random exposure, missing at random), so
    the test follows a different exposure than training: a real
    out-of-distribution test.  A rating ``>= threshold`` is a positive
    interaction (4: the debiasing literature's usual convention; 1,905
    self-selected and 860 random-exposure positives).

    * ``train``: every self-selected positive (user-major order).
    * ``val``: empty (:func:`painvrl.splits.exposure_holdout` draws validation sets).
    * ``test``: the random-exposure positives, **except** those that are also
      self-selected positives.  The 366 cells rated in both files carry the same
      rating in both (the user's one judgement, counted twice), 91 of them
      positive at threshold 4; they stay in ``train`` (the user found the coat
      themselves) and leave the test, since a ranking excludes training items
      and could never score them (test: 769 pairs at threshold 4).

    Features: the item attributes as four one-hot modalities, ``gender`` (2),
    ``type`` (16 jacket types), ``colour`` (13) and ``front_page`` (2: whether
    the shop showed the coat on its front page, an exposure signal the random
    test does not share), with :attr:`~painvrl.data.Dataset.feature_names`
    from ``item_features_map.txt`` (e.g. ``"onfrontpage:yes"``).  The Dataset
    L2-normalises each modality per row; a one-hot row has norm 1, so the
    features stay exactly 0/1.  User attributes and propensities are not read.

    The data are released for research; cite Schnabel, Swaminathan, Singh,
    Chandak and Joachims, "Recommendations as Treatments: Debiasing Learning
    and Evaluation", ICML 2016.

    Parameters
    ----------
    path : str or PathLike, optional
        The ``coat`` folder or a folder containing it.  If None, looked for in
        ``$PAINVRL_DATA/coat``, then ``../shared/data/coat`` relative to the
        repository holding this package, then relative to the current directory.
    threshold : int in 1..5, default 4
        Smallest rating that counts as a positive.

    Returns
    -------
    Dataset
        Named ``"coat"``; dense ids are the files' 0-based rows and columns.

    Raises
    ------
    FileNotFoundError
        If the folder or one of its files is not found (the message names it).
    TypeError, ValueError
        A non-integer ``threshold`` or one outside 1..5; files of the wrong shape or content.
    """
    threshold = check_int(threshold, "threshold", minimum=1, maximum=5, func="load_coat")
    folder = find_coat(path)
    train, test = _read_ratings(folder)
    blocks, names = _read_attributes(folder, train.shape[1])
    mnar = train >= threshold
    mar = (test >= threshold) & ~mnar  # the doubly rated positives stay in train (docstring)
    return Dataset(np.argwhere(mnar), test=np.argwhere(mar), features=blocks,
                   n_users=train.shape[0], n_items=train.shape[1], name="coat",
                   feature_names=names)
