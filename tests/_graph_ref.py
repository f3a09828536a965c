"""Dense float64 references of the graph models' pieces (tests/test_lightgcn.py,
tests/test_freedom.py)."""
import numpy as np


def dense(g, n):
    """The n x n matrix of a CSR graph (indptr, indices, values), float64."""
    M = np.zeros((n, n))
    for r in range(n):
        for e in range(g.indptr[r], g.indptr[r + 1]):
            M[r, g.indices[e]] += g.values[e]
    return M


def layer_mean(A, L):
    """P = 1/(L+1) sum_l A^l: LightGCN's layer combination as one matrix."""
    return sum(np.linalg.matrix_power(A, l) for l in range(L + 1)) / (L + 1)
