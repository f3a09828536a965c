/* pv_bind_rec.c -- binding of the rec kernels (placeholder until written). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

PyMethodDef pv_rec_methods[] = {
    {NULL, NULL, 0, NULL},
};
