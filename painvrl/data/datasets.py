"""Ready-made datasets: the real Last.fm and Coat sets, and generated data that needs no files.

This is the public namespace ``painvrl.datasets``; the code lives in
``lastfm.py``, ``coat.py`` (real data) and ``synthetic.py`` (generators).

* :func:`load_lastfm` finds and loads Last.fm 2K with its real text and audio features
  (:func:`find_lastfm`: where it is read from).
* :func:`load_coat` loads Coat: self-selected training ratings, a random-exposure test
  and 33 named item attributes (:func:`find_coat`: where it is read from).
* :func:`make_multimodal` generates a small dataset whose item content carries
  real signal about the users' preferences (the default data of ``python -m painvrl``).
* :func:`make_tiktok_like` generates data with the shape of the TikTok benchmark
  (36,656 users, 76,085 items, 3 x 128-d features) for timing at realistic size.
* :func:`make_spurious` generates data with planted invariant, spurious and noise
  feature columns and planted environments (:class:`SpuriousTruth`), to check
  the mask and environment identification against a known answer.
* :func:`planted_ood_split`, :func:`coat_ood_split`, :func:`lastfm_ood_split`
  (``ood_cases.py``): the three OOD cases, each with an OOD validation set
  distinct from its OOD test.
"""
from .coat import COAT_ATTRIBUTES, COAT_FOLDER, find_coat, load_coat
from .lastfm import LASTFM_FOLDER, find_lastfm, load_lastfm
from .ood_cases import (LASTFM_IDENTIFY, PLANTED_OOD, coat_ood_split, lastfm_ood_split,
                        planted_ood_split)
from .synthetic import (DEFAULT_MODALITIES, SpuriousTruth, make_multimodal, make_spurious,
                        make_tiktok_like)

__all__ = ["SpuriousTruth", "coat_ood_split", "find_coat", "find_lastfm", "lastfm_ood_split",
           "load_coat", "load_lastfm", "planted_ood_split", "make_multimodal", "make_spurious",
           "make_tiktok_like"]
