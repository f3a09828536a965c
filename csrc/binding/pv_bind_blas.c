/*
 * pv_bind_blas.c -- the binding's hold on BLAS threads, and _core.blas_info().
 *
 * The kernels share their work out among their own OpenMP threads in a fixed
 * partition and call BLAS inside it, so BLAS must run one thread: a BLAS call
 * that threads on its own oversubscribes the cores and, for some kernels
 * (OpenBLAS's Haswell sgemm among them), returns other last bits depending on
 * its internal split.  Kernels touch no global state, so the binding sets it
 * before each kernel call.  The library is the OpenBLAS painvrl links (by
 * default the scipy-openblas32 wheel, whose symbols no other module in the
 * process binds to: NumPy's and SciPy's wheels carry copies of their own), so
 * this changes nobody else's thread setting.  The OpenBLAS entry points are
 * weak references: with another CBLAS (PAINVRL_BLAS_LIBS) they are absent,
 * nothing is set, and that library's threads are the user's to hold at one.
 */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include "../kernels/pv_blas.h"

extern void PV_CBLAS(openblas_set_num_threads)(int) __attribute__((weak));
extern int PV_CBLAS(openblas_get_num_threads)(void) __attribute__((weak));
extern char *PV_CBLAS(openblas_get_config)(void) __attribute__((weak));
extern char *PV_CBLAS(openblas_get_corename)(void) __attribute__((weak));

void
pv_blas_one_thread(void)
{
    if (PV_CBLAS(openblas_set_num_threads) != NULL &&
        (PV_CBLAS(openblas_get_num_threads) == NULL ||
         PV_CBLAS(openblas_get_num_threads)() != 1)) {
        PV_CBLAS(openblas_set_num_threads)(1);
    }
}

#define PV_STR_(x) #x
#define PV_STR(x) PV_STR_(x)

static PyObject *
core_blas_info(PyObject *self, PyObject *noargs)
{
    const char *prefix = PV_STR(PV_CBLAS(cblas_sgemm));
    PyObject *threads = Py_None, *config = Py_None, *core = Py_None;
    PyObject *result = NULL;
    Py_INCREF(threads);
    Py_INCREF(config);
    Py_INCREF(core);
    if (PV_CBLAS(openblas_get_num_threads) != NULL) {
        Py_SETREF(threads, PyLong_FromLong(PV_CBLAS(openblas_get_num_threads)()));
    }
    if (threads != NULL && PV_CBLAS(openblas_get_config) != NULL) {
        Py_SETREF(config, PyUnicode_FromString(PV_CBLAS(openblas_get_config)()));
    }
    if (threads != NULL && config != NULL && PV_CBLAS(openblas_get_corename) != NULL) {
        Py_SETREF(core, PyUnicode_FromString(PV_CBLAS(openblas_get_corename)()));
    }
    if (threads != NULL && config != NULL && core != NULL) {
        result = Py_BuildValue("{s:s,s:O,s:O,s:O}", "sgemm_symbol", prefix, "num_threads",
                               threads, "config", config, "corename", core);
    }
    Py_XDECREF(threads);
    Py_XDECREF(config);
    Py_XDECREF(core);
    return result;
}

PyMethodDef pv_blas_methods[] = {
    {"blas_info", core_blas_info, METH_NOARGS,
     "blas_info($module, /)\n--\n\n"
     "The CBLAS the extension is linked against: the sgemm symbol it calls, and for\n"
     "OpenBLAS its thread count (held at 1 around every kernel call), build config and\n"
     "the kernel it runs (OPENBLAS_CORETYPE can change it)."},
    {NULL, NULL, 0, NULL},
};
