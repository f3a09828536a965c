"""Progress bars: tqdm's notebook-aware bar only when one is shown."""
from __future__ import annotations


def progress_bar(show: bool, **kwargs):
    """A tqdm bar; with ``show=False`` a disabled plain one, so a notebook without
    ipywidgets gets no "IProgress not found" warning for a bar nobody asked for."""
    if show:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(disable=not show, **kwargs)
