/* pv_bind_train.c -- binding of the train kernels (placeholder until written). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

PyMethodDef pv_train_methods[] = {
    {NULL, NULL, 0, NULL},
};
