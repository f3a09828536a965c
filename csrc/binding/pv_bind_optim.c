/* pv_bind_optim.c -- binding of the optim kernels (placeholder until written). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

PyMethodDef pv_optim_methods[] = {
    {NULL, NULL, 0, NULL},
};
