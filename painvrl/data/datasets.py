"""Ready-made datasets (the namespace ``painvrl.datasets``): real Last.fm data, and generated data.

* :func:`find_lastfm`, :func:`load_lastfm` (``lastfm.py``): Last.fm 2K with its
  real text and audio features.
* :func:`make_multimodal`, :func:`make_tiktok_like`, :func:`make_spurious` and
  :class:`SpuriousTruth` (``synthetic.py``): generated data that needs no files.
"""
from .synthetic import (DEFAULT_MODALITIES, LASTFM_FOLDER, SpuriousTruth, find_lastfm,
                        load_lastfm, make_multimodal, make_spurious, make_tiktok_like)

__all__ = ["SpuriousTruth", "find_lastfm", "load_lastfm", "make_multimodal", "make_spurious",
           "make_tiktok_like"]
