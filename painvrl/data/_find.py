"""Where the real data sets are looked for (shared by the Last.fm and Coat loaders)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Union


def data_candidates(path: Optional[Union[str, os.PathLike]], folder: str) -> List[Path]:
    """The folders a loader tries, in order.

    ``path`` itself and ``path/folder`` when given; otherwise
    ``$PAINVRL_DATA/folder``, ``$PAINVRL_DATA``, then ``../shared/data/folder``
    relative to the repository holding this package and relative to the
    current directory.
    """
    if path is not None:
        p = Path(path)
        return [p, p / folder]
    out: List[Path] = []
    env = os.environ.get("PAINVRL_DATA")
    if env:
        out += [Path(env) / folder, Path(env)]
    repo = Path(__file__).resolve().parents[2]  # painvrl/data/ -> the repository
    out.append(repo.parent / "shared" / "data" / folder)
    out.append(Path.cwd().parent / "shared" / "data" / folder)
    return out


def find_data_folder(path: Optional[Union[str, os.PathLike]], folder: str, marker: str,
                     what: str) -> Path:
    """The first candidate folder (:func:`data_candidates`) holding the file ``marker``.

    Raises
    ------
    FileNotFoundError
        Naming every place that was looked at.
    """
    tried = data_candidates(path, folder)
    for p in tried:
        if (p / marker).is_file():
            return p.resolve()
    where = "\n  ".join(str(p) for p in tried)
    hint = ("" if path is not None else
            f"; pass path= or set PAINVRL_DATA to a folder containing {folder}/")
    raise FileNotFoundError(f"{what} data ({marker}) not found; looked in:\n  {where}{hint}")
