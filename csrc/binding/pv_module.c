/*
 * pv_module.c -- painvrl._core: multi-phase init; registers each family's
 * method table (pv_bind_*.c).  The only translation unit that imports the
 * NumPy C API.
 */
#include "pv_numpy.h"

static int
core_exec(PyObject *m)
{
    if (PyArray_ImportNumPyAPI() < 0) {
        return -1;
    }
    PyMethodDef *tables[] = {pv_rng_methods, pv_rec_methods,
                             pv_train_methods, pv_eval_methods, pv_mask_methods,
                             pv_identify_methods, pv_convert_methods, pv_blas_methods,
                             pv_graph_methods, pv_vbpr_methods, pv_freedom_methods};
    for (size_t k = 0; k < sizeof(tables) / sizeof(tables[0]); k++) {
        if (PyModule_AddFunctions(m, tables[k]) < 0) {
            return -1;
        }
    }
#ifdef _OPENMP
    if (PyModule_AddIntConstant(m, "HAVE_OPENMP", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(m, "HAVE_OPENMP", 0) < 0) {
        return -1;
    }
#endif
    return PyModule_AddIntConstant(m, "DEFAULT_THREADS", pv_default_threads());
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030c0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "painvrl._core",
    .m_doc = "painvrl's C kernels. Private: use the painvrl package.",
    .m_size = 0,
    .m_slots = core_slots,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
