/* pv_bind_mask.c -- binding of the mask kernels (placeholder until written). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

PyMethodDef pv_mask_methods[] = {
    {NULL, NULL, 0, NULL},
};
