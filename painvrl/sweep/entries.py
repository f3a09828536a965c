"""The models of a sweep: estimator classes and pipeline entry points.

A model entry of a grid is a registered name (:data:`MODELS`), an estimator class,
or a callable entry point:

* **Estimator class** (:class:`~painvrl.Backbone`, :class:`~painvrl.Popularity`,
  :class:`~painvrl.InvRL`, :class:`~painvrl.PaInvRL`, or any class with ``fit(dataset)``,
  ``user_vectors()`` and ``item_vectors()``): built with the cell's parameters,
  fitted on the dataset and scored on every test split by
  :func:`painvrl.compare.compare` (Recall and NDCG @10 and @20, full ranking,
  training items excluded).  Parameters are checked against its ``__init__``.
* **Entry point**: ``fn(dataset, split, *, seed, **params)`` returning a tidy
  DataFrame (a ``value`` column and any others: ``split``, ``metric``, ``k``, ...)
  or an object whose ``.frame`` is one.  A function taking ``seeds`` instead of
  ``seed`` gets ``seeds=[seed]``; one taking ``n_threads`` gets the sweep's
  ``n_threads_per_task``; one taking ``progress`` gets ``False`` unless the grid
  sets it.  ``split`` is what the dataset loader returned (see
  :mod:`painvrl.sweep.sources`).

In both cases ``seed`` and ``n_threads`` are the runner's: the grid sets them through
``seeds`` and ``n_threads_per_task``, never through ``params``.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import pandas as pd

from .spec import qualified_name

__all__ = ["MODELS", "ModelEntry", "register_model", "fit_and_score"]

#: Names usable in a grid's ``models`` besides classes and callables; the pipeline entry
#: points (``pareto_front``, ``ablations``) are added with :func:`register_model`.
MODELS: Dict[str, Any] = {}

RESERVED = ("seed", "seeds", "n_threads")


def _builtin_models() -> Dict[str, Any]:
    from ..experiments import ablations, pareto_front
    from ..invariance.pipeline import InvRL, PaInvRL
    from ..models import Backbone, Popularity

    return {"Backbone": Backbone, "Popularity": Popularity, "InvRL": InvRL, "PaInvRL": PaInvRL,
            "pareto_front": pareto_front, "ablations": ablations}


def register_model(name: str, model: Any) -> None:
    """Make ``name`` usable in a grid's ``models`` (an estimator class or an entry point)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_model: name must be a non-empty str, got {name!r}")
    if not callable(model):
        raise TypeError(f"register_model: model must be a class or a callable, got "
                        f"{type(model).__name__}")
    MODELS[name] = model


def _is_estimator(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "fit", None))


def _estimator_params(cls: type) -> Optional[set]:
    """Keyword names of ``cls(...)``: its ``_param_names()`` or the ``__init__`` chain."""
    names = getattr(cls, "_param_names", None)
    if callable(names):
        return set(names())
    accepted: set = set()
    for klass in cls.__mro__:
        if klass is object:
            return accepted
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        accepted |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                           p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return accepted
    return accepted


def _entry_params(fn: Callable) -> Tuple[Optional[set], set]:
    """(keyword names ``fn`` accepts, None for **kwargs; every named parameter)."""
    params = list(inspect.signature(fn).parameters.values())
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None, named
    return named, named


@dataclass(frozen=True)
class ModelEntry:
    """One model of a grid: its name, the class or callable, and what it accepts."""

    name: str
    obj: Any = field(compare=False)
    obj_id: str
    estimator: bool
    accepted: Optional[frozenset] = field(compare=False)  # None: any keyword (**kwargs)
    named: frozenset = field(compare=False, default=frozenset())

    @property
    def spec(self) -> Dict[str, Any]:
        return {"name": self.name, "model": self.obj_id}

    @classmethod
    def parse(cls, name: Optional[str], entry: Any, where: str) -> "ModelEntry":
        """A grid's model entry, checked: a known name, an estimator class or a callable."""
        if isinstance(entry, str):
            known = {**_builtin_models(), **MODELS}
            if entry not in known:
                raise ValueError(f"run_sweep: {where} names an unknown model {entry!r}; known: "
                                 f"{sorted(known)} (or pass an estimator class or a callable)")
            name, entry = name or entry, known[entry]
        if _is_estimator(entry):
            accepted, named = _estimator_params(entry), set()
            estimator = True
        elif callable(entry) and not isinstance(entry, type):
            accepted, named = _entry_params(entry)
            if accepted is not None and not ({"seed", "seeds"} & named):
                raise TypeError(f"run_sweep: {where}: entry point {qualified_name(entry)} must "
                                f"take a keyword seed (or seeds): fn(dataset, split, *, seed, "
                                f"**params)")
            estimator = False
        else:
            raise TypeError(f"run_sweep: {where} must be a model name, an estimator class (with "
                            f"fit) or a callable entry point, got {type(entry).__name__}")
        return cls(name=name or entry.__name__, obj=entry, obj_id=qualified_name(entry),
                   estimator=estimator,
                   accepted=None if accepted is None else frozenset(accepted),
                   named=frozenset(named))

    def check_params(self, params: Dict[str, Any], where: str) -> None:
        """Unknown or reserved parameter names -> ValueError naming them."""
        reserved = sorted(set(params) & set(RESERVED))
        if reserved:
            raise ValueError(f"run_sweep: {where}: {reserved} cannot be set in params: the seed "
                             f"comes from the grid's seeds, the threads from n_threads_per_task")
        if self.accepted is not None:
            unknown = sorted(set(params) - self.accepted)
            if unknown:
                raise ValueError(f"run_sweep: {where}: unknown parameter(s) {unknown} for model "
                                 f"{self.name!r} ({self.obj_id}); it accepts "
                                 f"{sorted(self.accepted - set(RESERVED))}")

    def takes(self, name: str) -> bool:
        """Whether the class or function accepts the keyword ``name``."""
        if self.estimator:
            return self.accepted is None or name in self.accepted
        return name in self.named


def fit_and_score(model: ModelEntry, dataset, split, *, seed: int, params: Dict[str, Any],
                  n_threads: int, loader_id: str) -> Tuple[pd.DataFrame, float]:
    """Run one cell's model: ``(tidy frame, seconds of the fit or of the entry point's call)``.

    An estimator is scored on the test splits of ``split`` (see
    :func:`painvrl.sweep.sources.scoring_splits`); an entry point gets ``split`` as it is.
    """
    kwargs = dict(params)
    if model.takes("n_threads"):
        kwargs["n_threads"] = n_threads
    if model.takes("progress"):
        kwargs.setdefault("progress", False)
    if model.estimator:
        from ..evaluation.compare import compare
        from .sources import scoring_splits

        splits = scoring_splits(split, loader_id)
        if model.takes("seed"):
            kwargs["seed"] = seed
        start = time.perf_counter()
        fitted = model.obj(**kwargs).fit(dataset)
        seconds = time.perf_counter() - start
        frame = compare({model.name: fitted}, splits, n_threads=n_threads)
        return frame.drop(columns="model"), seconds
    if "seed" not in model.named and "seeds" in model.named:
        kwargs["seeds"] = [seed]  # e.g. pareto_front(dataset, split, *, seeds, **params)
    else:
        kwargs["seed"] = seed
    start = time.perf_counter()
    out = model.obj(dataset, split, **kwargs)
    seconds = time.perf_counter() - start
    frame = getattr(out, "frame", out)
    if not isinstance(frame, pd.DataFrame) or "value" not in frame.columns:
        raise TypeError(f"run_sweep: entry point {model.obj_id} must return a tidy DataFrame with "
                        f"a 'value' column (or an object whose .frame is one), got "
                        f"{type(out).__name__}")
    return frame.reset_index(drop=True), seconds
