/* pv_bind_eval.c -- binding of the eval kernels (placeholder until written). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

PyMethodDef pv_eval_methods[] = {
    {NULL, NULL, 0, NULL},
};
