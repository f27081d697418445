/* Thread-count settings on top of OpenMP. */
#include "core/threads.h"

#include <omp.h>
#include <unistd.h>

int og_num_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void og_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : og_num_cores());
}

int og_get_threads(void) { return omp_get_max_threads(); }
