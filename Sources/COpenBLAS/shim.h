// OpenBLAS's CBLAS interface plus its thread-count controls, which cblas.h declares too.
#include <cblas.h>
