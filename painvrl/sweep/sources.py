"""The datasets of a sweep: loader names, their contract, and a per-process cache.

A dataset entry of a grid is a registered loader name (:data:`LOADERS`), a callable,
or ``(name or callable, kwargs)``.  A loader is called as ``loader(seed=seed,
**kwargs)`` (plus ``n_threads=`` when it accepts it) and returns ``(dataset,
split)``: the :class:`~painvrl.Dataset` the models are fitted on, and the test
splits they are scored on, either a mapping accepted by
:func:`painvrl.compare.compare` (``{"iid": (dataset, "test"), ...}``) or an object
with a ``splits()`` method returning one (:class:`painvrl.splits.EnvironmentHoldout`).

Each worker process loads a dataset the first time a task needs it and keeps it for
the next tasks (the raw Last.fm tables, and the last few (dataset, seed) splits), so
a dataset's feature table is read once per worker, not once per task.
"""
from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .spec import canonical, qualified_name

__all__ = ["LOADERS", "DatasetEntry", "register_dataset", "load", "scoring_splits"]


def planted(*, seed: int, **make_spurious_params):
    """Planted-truth data with an OOD validation and an OOD test environment
    (:func:`painvrl.datasets.planted_ood_split`: four planted environments, spurious
    effects +1, -1, -1, -1, weights 3 : 1 : 1 : 1; environment 2 the OOD validation set,
    environment 3 the OOD test), any :func:`~painvrl.datasets.make_spurious` parameter
    overridden by ``make_spurious_params``."""
    from ..data.ood_cases import planted_ood_split

    holdout = planted_ood_split(seed, **make_spurious_params)
    return holdout.dataset, holdout


def coat(*, seed: int, path: Optional[str] = None, threshold: int = 4):
    """Coat's self-selected ratings as training data, its random-exposure ratings as the
    OOD test with a fixed 10 % as OOD validation (:func:`painvrl.datasets.coat_ood_split`)."""
    from ..data.coat import load_coat
    from ..data.ood_cases import coat_ood_split

    holdout = coat_ood_split(seed, load_coat(path, threshold=threshold))
    return holdout.dataset, holdout


@functools.lru_cache(maxsize=2)
def _lastfm_tables(path: Optional[str]):
    from ..data.datasets import load_lastfm

    return load_lastfm(path)


def lastfm(*, seed: int, path: Optional[str] = None, n_threads: Optional[int] = None,
           **identify_params):
    """Last.fm 2K with its two identified environments farthest from the rest held out
    as the OOD test and the next one as OOD validation
    (:func:`painvrl.datasets.lastfm_ood_split`), identification on all pairs pooled with
    ``LASTFM_IDENTIFY`` unless ``identify_params`` (keyword arguments of
    :func:`painvrl.identify_environments`) say otherwise.  ``path``: the folder holding
    ``lastfm2k-multimodal``."""
    from ..data.ood_cases import LASTFM_IDENTIFY, lastfm_ood_split
    from ..data.splits import pooled
    from ..invariance.environments import identify_environments

    data = _lastfm_tables(path)
    labels = identify_environments(pooled(data), seed=seed, n_threads=n_threads,
                                   **{**LASTFM_IDENTIFY, **identify_params}).labels
    holdout = lastfm_ood_split(data, labels, seed=seed)
    return holdout.dataset, holdout


def _planted_params():
    from ..data.synthetic import make_spurious

    return set(inspect.signature(make_spurious).parameters) - {"seed"}


def _coat_params():
    return {"path", "threshold"}


def _lastfm_params():
    from ..invariance.environments import identify_environments

    names = set(inspect.signature(identify_environments).parameters)
    return (names - {"dataset", "seed", "n_threads", "progress", "labels"}) | {"path"}


#: Registered loader names -> (loader, function giving the names of its parameters).
LOADERS: Dict[str, Tuple[Callable, Callable[[], set]]] = {
    "planted": (planted, _planted_params),
    "lastfm": (lastfm, _lastfm_params),
    "coat": (coat, _coat_params),
}


def register_dataset(name: str, loader: Callable, params: Optional[Callable[[], set]] = None):
    """Make ``name`` usable in a grid's ``datasets`` (e.g. a new ``load_coat`` split).

    Parameters
    ----------
    name : str
    loader : callable
        ``loader(*, seed, **kwargs) -> (dataset, split)`` (see the module docstring).
    params : callable, optional
        Returns the set of keyword names ``loader`` accepts; by default read from its
        signature.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_dataset: name must be a non-empty str, got {name!r}")
    if not callable(loader):
        raise TypeError(f"register_dataset: loader must be callable, got {type(loader).__name__}")
    LOADERS[name] = (loader, params or (lambda: _signature_params(loader)))


def _signature_params(fn: Callable) -> Optional[set]:
    """Keyword names ``fn`` accepts besides ``seed`` / ``n_threads``; None if it takes **kwargs."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} \
        - {"seed", "n_threads"}


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a grid: its name, loader and fixed keyword arguments."""

    name: str
    loader: Callable = field(compare=False)
    loader_id: str
    kwargs: Dict[str, Any] = field(compare=False, hash=False)

    @property
    def spec(self) -> Dict[str, Any]:
        return {"name": self.name, "loader": self.loader_id, "kwargs": self.kwargs}

    @classmethod
    def parse(cls, name: Optional[str], entry: Any, where: str) -> "DatasetEntry":
        """A grid's dataset entry, checked: known loader, known keyword arguments."""
        kwargs: Dict[str, Any] = {}
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[1], Mapping):
                raise TypeError(f"run_sweep: {where} must be a loader name, a callable or "
                                f"(loader, kwargs dict), got a tuple of {len(entry)}")
            entry, kwargs = entry[0], dict(entry[1])
        if isinstance(entry, str):
            if entry not in LOADERS:
                raise ValueError(f"run_sweep: {where} names an unknown dataset {entry!r}; known: "
                                 f"{sorted(LOADERS)} (or pass a loader callable)")
            loader, accepted = LOADERS[entry][0], LOADERS[entry][1]()
            loader_id = entry
        elif callable(entry):
            loader, accepted, loader_id = entry, _signature_params(entry), qualified_name(entry)
        else:
            raise TypeError(f"run_sweep: {where} must be a loader name, a callable or "
                            f"(loader, kwargs), got {type(entry).__name__}")
        if accepted is not None:
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise ValueError(f"run_sweep: {where}: unknown parameter(s) {unknown} for dataset "
                                 f"loader {loader_id!r}; it accepts {sorted(accepted)}")
        if name is None:
            name = loader_id if isinstance(entry, str) else getattr(entry, "__name__", loader_id)
        return cls(name=name, loader=loader, loader_id=loader_id,
                   kwargs=canonical(kwargs, f"run_sweep: {where} kwargs"))


_SPLITS: "OrderedDict[Tuple[str, int], Tuple[Any, Any]]" = OrderedDict()
_SPLITS_KEPT = 4  # (dataset, seed) splits kept per worker process


def load(entry: DatasetEntry, seed: int, n_threads: int):
    """``(dataset, split)`` of ``entry`` for ``seed``, from this process's cache if it is there."""
    from ..data.dataset import Dataset

    key = (repr(sorted(entry.spec.items())), seed)
    if key in _SPLITS:
        _SPLITS.move_to_end(key)
        return _SPLITS[key]
    kwargs = dict(entry.kwargs)
    if "n_threads" in inspect.signature(entry.loader).parameters:
        kwargs["n_threads"] = n_threads
    out = entry.loader(seed=seed, **kwargs)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Dataset)):
        raise TypeError(f"run_sweep: dataset loader {entry.loader_id!r} must return (Dataset, "
                        f"split), got {type(out).__name__}")
    _SPLITS[key] = out
    while len(_SPLITS) > _SPLITS_KEPT:
        _SPLITS.popitem(last=False)
    return out


def scoring_splits(split: Any, loader_id: str) -> Mapping[str, Any]:
    """The ``compare()`` splits mapping of a loader's ``split``."""
    if callable(getattr(split, "splits", None)):
        split = split.splits()
    if not isinstance(split, Mapping):
        raise TypeError(f"run_sweep: dataset loader {loader_id!r} returned a split of type "
                        f"{type(split).__name__}; expected a dict name -> (dataset, test) or an "
                        f"object with splits()")
    return split
