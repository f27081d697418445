/* Folder helpers for the output-writer tests: counting what a write left behind. */
#ifndef OG_TEST_DIRUTIL_H
#define OG_TEST_DIRUTIL_H

#include <dirent.h>
#include <string.h>

/* Number of entries in dir other than . and .. (temporaries included). */
static inline int og_test_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

#endif
