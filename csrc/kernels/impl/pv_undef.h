/* Undo one instantiation of a type-generic kernel body (see the impl/ headers). */
#undef PV_T
#undef PV_FN
#undef PV_GEMM
#undef PV_EXP
#undef PV_LOG1P
#undef PV_SQRT
#undef PV_FABS
