"""A sweep's grid: what it may hold, how it is checked, and its cells.

A grid is a dict::

    {"datasets": ["planted", ("lastfm", {"max_rounds": 3})],   # or {"name": entry, ...}
     "models": ["Backbone", "InvRL", PaInvRL, my_entry_point],  # or {"name": entry, ...}
     "seeds": [0, 1, 2, 3, 4],
     "params": {"Backbone": {"max_epochs": [50, 100], "reg": "batch"}}}

``datasets`` entries are described in :mod:`painvrl.sweep.sources`, ``models``
entries in :mod:`painvrl.sweep.entries`.  ``params`` maps a model's name to its
keyword arguments: a **list** value is swept (one setting per element), any other
value is fixed; the settings of one model are the Cartesian product of its lists.
The cells are every (dataset, model, setting, seed).  Every problem (an empty part,
an unknown model, dataset or parameter, a parameter with no stable hash) is a
``TypeError``/``ValueError`` raised here, before any task starts.
"""
from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

from .entries import ModelEntry
from .sources import DatasetEntry
from .spec import canonical, digest, to_json

__all__ = ["Cell", "Grid", "parse_grid"]

_PARTS = ("datasets", "models", "seeds", "params")


@dataclass(frozen=True)
class Cell:
    """One task of a sweep: a model with one setting, on one dataset, with one seed.

    Attributes
    ----------
    key : str
        16 hex digits of the SHA-256 of :attr:`spec` (the cell's identity in the store).
    spec : dict
        The full specification: dataset (name, loader, kwargs), model (name, class or
        function), params, seed.
    """

    dataset: DatasetEntry = field(compare=False)
    model: ModelEntry = field(compare=False)
    params: Dict[str, Any] = field(compare=False, hash=False)
    seed: int = field(compare=False)
    key: str = ""

    @property
    def spec(self) -> Dict[str, Any]:
        return {"dataset": self.dataset.spec, "model": self.model.spec, "params": self.params,
                "seed": self.seed}

    @property
    def params_json(self) -> str:
        return to_json(self.params)


@dataclass(frozen=True)
class Grid:
    """A checked grid: its cells in order (dataset, model, setting, seed) and its identity."""

    cells: Tuple[Cell, ...]
    sweep_id: str  # digest of every cell's key: the identity a store records

    @property
    def keys(self) -> List[str]:
        return [c.key for c in self.cells]


def _named(part: Any, what: str) -> List[Tuple[Any, Any, str]]:
    """(name or None, entry, where) for a list or a dict name -> entry."""
    if isinstance(part, Mapping):
        items = [(str(k), v, f"grid[{what!r}][{k!r}]") for k, v in part.items()]
    elif isinstance(part, (list, tuple)):
        items = [(None, v, f"grid[{what!r}][{i}]") for i, v in enumerate(part)]
    else:
        raise TypeError(f"run_sweep: grid[{what!r}] must be a list or a dict name -> entry, got "
                        f"{type(part).__name__}")
    if not items:
        raise ValueError(f"run_sweep: grid[{what!r}] is empty: a sweep needs at least one")
    return items


def _unique(entries, what: str):
    names = [e.name for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"run_sweep: grid[{what!r}] holds the name(s) {dup} more than once; give "
                         f"entries distinct names with a dict name -> entry")
    return {e.name: e for e in entries}


def _settings(model: ModelEntry, params: Any, where: str) -> List[Dict[str, Any]]:
    """The Cartesian product of a model's swept (list) values, fixed values in each."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"run_sweep: {where} must be a dict parameter -> value or list of "
                        f"values, got {type(params).__name__}")
    model.check_params(dict(params), where)
    swept = {k: v for k, v in params.items() if isinstance(v, list)}
    empty = sorted(k for k, v in swept.items() if not v)
    if empty:
        raise ValueError(f"run_sweep: {where}: parameter(s) {empty} sweep an empty list")
    fixed = {k: v for k, v in params.items() if k not in swept}
    out = []
    for values in itertools.product(*swept.values()):
        setting = {**fixed, **dict(zip(swept, values))}
        out.append(canonical(setting, where))
    return out


def parse_grid(grid: Any) -> Grid:
    """Check ``grid`` (see the module docstring) and expand it into cells.

    Raises
    ------
    TypeError, ValueError
        Naming the part of the grid at fault.
    """
    if isinstance(grid, Grid):
        return grid
    if not isinstance(grid, Mapping):
        raise TypeError(f"run_sweep: grid must be a dict with keys {list(_PARTS)}, got "
                        f"{type(grid).__name__}")
    unknown = sorted(set(grid) - set(_PARTS))
    if unknown:
        raise ValueError(f"run_sweep: grid has unknown key(s) {unknown}; expected {list(_PARTS)}")
    for part in ("datasets", "models", "seeds"):
        if part not in grid:
            raise ValueError(f"run_sweep: grid lacks {part!r}")
    datasets = _unique([DatasetEntry.parse(n, e, w) for n, e, w in
                        _named(grid["datasets"], "datasets")], "datasets")
    models = _unique([ModelEntry.parse(n, e, w) for n, e, w in _named(grid["models"], "models")],
                     "models")
    seeds = grid["seeds"]
    if not isinstance(seeds, (list, tuple, range)) or not len(seeds):
        raise ValueError(f"run_sweep: grid['seeds'] must be a non-empty list of ints, got "
                         f"{seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise TypeError(f"run_sweep: grid['seeds'] must hold non-negative ints, got {s!r}")
    seeds = sorted({int(s) for s in seeds})
    params = grid.get("params") or {}
    if not isinstance(params, Mapping):
        raise TypeError(f"run_sweep: grid['params'] must be a dict model name -> parameters, got "
                        f"{type(params).__name__}")
    strangers = sorted(set(params) - set(models))
    if strangers:
        raise ValueError(f"run_sweep: grid['params'] names model(s) {strangers} that are not in "
                         f"grid['models'] {sorted(models)}")
    cells = []
    for dataset in datasets.values():
        for name, model in models.items():
            for setting in _settings(model, params.get(name), f"grid['params'][{name!r}]"):
                for seed in seeds:
                    cell = Cell(dataset=dataset, model=model, params=setting, seed=seed)
                    cells.append(Cell(dataset=dataset, model=model, params=setting, seed=seed,
                                      key=digest(cell.spec)))
    return Grid(cells=tuple(cells), sweep_id=digest(sorted(c.key for c in cells)))
