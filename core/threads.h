/* CPU threading. Operations parallelise with OpenMP; each in-process rank is a thread that runs
 * its own OpenMP team, so `og_set_threads` is per calling thread. */
#ifndef OG_THREADS_H
#define OG_THREADS_H

/* n <= 0 means all cores. Applies to the calling thread and the teams it starts. */
void og_set_threads(int n);
int og_get_threads(void);
int og_num_cores(void);

#endif
