# Stubs for the C extension painvrl._core (private: use the painvrl package).
from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

HAVE_OPENMP: int
DEFAULT_THREADS: int

_F = npt.NDArray[np.floating]
_F32 = npt.NDArray[np.float32]
_I64 = npt.NDArray[np.int64]

# rng
def uniform_ints(n: int, high: int, seed: int, stream: int, epoch: int) -> _I64: ...
def permutation(n: int, seed: int, stream: int, epoch: int) -> _I64: ...

# rec: one batch's loss and dense gradients (float32 or float64, all arrays of one dtype)
def rec_loss_grad(U: _F, V: _F, W: _F, b: Optional[_F], g: Optional[_F], X: _F, users: _I64,
                  items: _I64, beta_u: _F, beta_i: _F, *,
                  w: Tuple[float, float, float, float] = ..., reg: str = ..., wd1: float = ...,
                  wdi: float = ..., wd2: float = ..., n_threads: int = ...
                  ) -> Tuple[float, _F, _F, _F, Optional[_F], Optional[_F]]: ...

# train: one epoch, float32, parameters and optimiser state updated in place
# (fusion=None: the backbone; 'attention' / 'global' / 'invariant': the final recommender)
def train_epoch(U: _F32, V: _F32, W: _F32, b: Optional[_F32], g: Optional[_F32], X: _F32,
                beta_u: _F32, beta_i: _F32, users: _I64, items: _I64,
                state: Tuple[Optional[_F32], ...], *, w: Tuple[float, float, float, float] = ...,
                emb_opt: str = ..., emb_lr: float = ..., proj_lr: float = ..., reg: str = ...,
                wd1: float = ..., wdi: float = ..., wd2: float = ..., l1: float = ...,
                l1_mask: Optional[_F32] = ..., batch_size: int = ..., n_neg: int = ...,
                seed: int = ..., epoch: int = ..., step: int = ..., n_threads: int = ...,
                fusion: Optional[str] = ..., mask: Optional[_F32] = ...,
                A: Optional[_F32] = ..., c: Optional[_F32] = ..., q: Optional[_F32] = ...,
                omega: Optional[_F32] = ...,
                convert_state: Optional[Tuple[Optional[_F32], ...]] = ...,
                W_var: Optional[_F32] = ..., b_var: Optional[_F32] = ...,
                fusion_l2: Optional[float] = ...
                ) -> Tuple[float, int, int]: ...
def epoch_negatives(n_items: int, n_neg: int, seed: int, epoch: int, position: int) -> _I64: ...
# eval: full ranking (csrc/binding/pv_bind_eval.c)

def topk(
    user_vecs: NDArray[np.float32],
    item_vecs: NDArray[np.float32],
    k: int,
    exclude_indptr: Optional[NDArray[np.int64]] = None,
    exclude_indices: Optional[NDArray[np.int64]] = None,
    *,
    mask_value: float = ...,
    user_chunk: int = 512,
    item_tile: int = 2048,
    n_threads: int = 0,
    prefilter: Optional[str] = None,
) -> Tuple[NDArray[np.int64], NDArray[np.float32]]:
    """(ids, scores), both (n_users, k), best first; ties by ascending id."""

def topk_bf16_backend() -> str:
    """'amx' or 'portable': the estimator topk(prefilter='bf16') uses here."""

def ranking_metrics(
    topk_ids: NDArray[np.int64],
    test_indptr: NDArray[np.int64],
    test_indices: NDArray[np.int64],
    ks: NDArray[np.int64],
    n_items: int,
    *,
    n_threads: int = 0,
) -> NDArray[np.float64]:
    """(n_users, len(ks), 6): precision, recall, ndcg, ndcg_invrl, hit_rate, map."""
# identify: environment identification rounds (method.md §2.1); labels (int64) updated in place.
# Returns (changes (n_rounds,), sizes (n_rounds, n_envs), last round's scores (n_envs, n_pairs)
# or None).  A round depends only on the labels it starts from (streams keyed by epoch only).
def identify(users: _I64, items: _I64, labels: _I64, X: _F32, beta_u: _F32, beta_i: _F32, *,
             n_users: int, n_envs: int = 10, max_rounds: int = 10, tol_changes: int = 0,
             d_id: int = 64, d_c: int = 64, emb_opt: str = "adagrad", emb_lr: float = 1e-3,
             proj_lr: float = 1e-3, reg: str = "full", wd1: float = 1e-4, wdi: float = 2.0,
             wd2: float = 0.01, l1: float = 0.01, mask_prev: Optional[_F32] = None,
             bias: bool = True, init_std: float = 0.01, batch_size: int = 512, n_neg: int = 50,
             epochs: int = 20, w: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
             seed: int = 2233, n_threads: int = 0,
             return_scores: bool = False) -> Tuple[_I64, _I64, Optional[_F32]]: ...
# mask: invariant-mask learning (csrc/binding/pv_bind_mask.c)

def mask_step(
    U: NDArray[Any], V: NDArray[Any], X: NDArray[Any], W: NDArray[Any], mu: NDArray[Any],
    eps: NDArray[Any], users: NDArray[np.int64], items: NDArray[np.int64],
    beta_u: NDArray[Any], beta_i: NDArray[Any], *, sigma: float = 0.01,
    w: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0), wd2: float = 0.01,
    n_threads: int = 0, work: Optional[NDArray[np.uint8]] = None,
) -> Tuple[NDArray[np.float64], float, float, float, NDArray[Any], NDArray[Any]]: ...
def mask_step_workspace(
    n_env: int, batch: int, n_neg: int, D: int, d_c: int, *, double: bool = False,
    n_threads: int = 0,
) -> NDArray[np.uint8]: ...
def mask_weigh(
    a: NDArray[Any], b: NDArray[Any], erm_loss: float, irm_loss: float, *,
    weighting: int = 0, normalize: int = 0, apply_raw: bool = False, scope_offset: int = 0,
    alpha: float = 1.0, pref_erm: float = 0.5, pref_irm: float = 0.5,
    pair_eps: float = 0.0001,
) -> Tuple[float, float, float, int]: ...
def pair_alpha(
    erm_loss: float, irm_loss: float, aa: float, ab: float, bb: float, pref_erm: float,
    pref_irm: float, eps: float,
) -> Tuple[float, int]: ...
def mask_fit(
    users: NDArray[np.int64], items: NDArray[np.int64], env: NDArray[np.int64], n_env: int,
    U: NDArray[np.float32], V: NDArray[np.float32], X: NDArray[np.float32],
    beta_u: NDArray[np.float32], beta_i: NDArray[np.float32], *, epochs: int = 40,
    batch: int = 512, n_neg: int = 50, sigma: float = 0.01, lr_w: float = 0.001,
    lr_mu: float = 0.001, lam: float = 0.1,
    w: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0), wd2: float = 0.01,
    weighting: int = 0, normalize: int = 0, apply_raw: bool = False, scope_offset: int = 0,
    alpha: float = 1.0, pref_erm: float = 0.5, pref_irm: float = 0.5,
    pair_eps: float = 0.0001, seed: int = 2233, n_threads: int = 0,
) -> dict[str, Any]: ...
# convert: the final recommender's convert module (method.md §4.2), float32 or float64
def convert_loss_grad(U: _F, V: _F, W: _F, b: Optional[_F], A: Optional[_F], c: Optional[_F],
                      q: Optional[_F], omega: Optional[_F], mask: _F, X: _F, users: _I64,
                      items: _I64, beta_u: _F, beta_i: _F, *,
                      w: Tuple[float, float, float, float] = ..., fusion: str = ...,
                      n_threads: int = ..., W_var: Optional[_F] = ..., b_var: Optional[_F] = ...
                      ) -> Tuple[float, _F, _F, _F, Optional[_F], Optional[_F], Optional[_F],
                                 Optional[_F], Optional[_F], _F, _F, Optional[_F],
                                 Optional[_F]]: ...
def convert_items(W: _F, b: Optional[_F], A: Optional[_F], c: Optional[_F], q: Optional[_F],
                  omega: Optional[_F], mask: _F, X: _F, *, items: Optional[_I64] = ...,
                  fusion: str = ..., n_threads: int = ..., W_var: Optional[_F] = ...,
                  b_var: Optional[_F] = ...) -> Tuple[_F, _F]: ...
# graph models (pv_graph, pv_lgcn, pv_vbpr, pv_freedom), float32
_Graph = Tuple[_I64, _I64, _F32]
def propagate(indptr: _I64, indices: _I64, values: _F32, E0: _F32, n_layers: int,
              mean: bool = ..., n_threads: int = ...) -> _F32: ...
def lgcn_batch(indptr: _I64, indices: _I64, values: _F32, E0: _F32, n_users: int,
               n_layers: int, users: _I64, pos: _I64, neg: _I64, reg: float,
               n_threads: int = ...) -> Tuple[float, _F32]: ...
def lgcn_epoch(indptr: _I64, indices: _I64, values: _F32, E0: _F32, m1: _F32, m2: _F32,
               n_users: int, n_layers: int, users: _I64, items: _I64, lr: float, reg: float,
               batch_size: int, seed: int, epoch: int, step: int,
               n_threads: int = ...) -> Tuple[float, int, int]: ...
def vbpr_batch(params: Tuple[_F32, ...], X: _F32, users: _I64, pos: _I64, neg: _I64,
               lam: float, lam_b: float, lam_e: float,
               n_threads: int = ...) -> Tuple[float, Tuple[_F32, ...]]: ...
def vbpr_epoch(params: Tuple[_F32, ...], m1: Tuple[_F32, ...], m2: Tuple[_F32, ...], X: _F32,
               users: _I64, items: _I64, lr: float, lam: float, lam_b: float, lam_e: float,
               batch_size: int, seed: int, epoch: int, step: int,
               n_threads: int = ...) -> Tuple[float, int, int]: ...
def freedom_batch(ui: _Graph, ii: _Graph, ii_t: _Graph, E0: _F32, W: _F32, cols: _I64, X: _F32,
                  n_users: int, n_ui_layers: int, n_ii_layers: int, users: _I64, pos: _I64,
                  neg: _I64, align: float, n_threads: int = ...) -> Tuple[float, _F32, _F32]: ...
def freedom_epoch(ui: _Graph, ii: _Graph, ii_t: _Graph, E0: _F32, W: _F32, cols: _I64, X: _F32,
                  n_users: int, n_ui_layers: int, n_ii_layers: int,
                  adam: Tuple[_F32, _F32, _F32, _F32], users: _I64, items: _I64, lr: float,
                  align: float, batch_size: int, seed: int, epoch: int, step: int,
                  n_threads: int = ...) -> Tuple[float, int, int]: ...
