"""The data side of painvrl: the Dataset, its readers, real and generated datasets, and splits.

* :class:`Dataset` (``dataset.py``): the immutable container every model takes,
  and its validation; :class:`UserItemCSR` (``csr.py``): a user -> items set.
* :func:`load_mmrec`, :func:`load_mmgcn` (``loaders.py``): the field's two file formats.
* :mod:`painvrl.datasets` (``datasets.py``): Last.fm 2K (``lastfm.py``), Coat
  (``coat.py``), generated data (``synthetic.py``) and the three OOD cases
  (``ood_cases.py``).
* :mod:`painvrl.splits` (``splits.py``): train / validation / test and OOD splits.

Nothing here imports the models or the invariance modules.
"""
from . import datasets, splits
from .csr import UserItemCSR
from .dataset import Dataset
from .loaders import load_mmgcn, load_mmrec

__all__ = ["Dataset", "UserItemCSR", "load_mmrec", "load_mmgcn", "datasets", "splits"]
