/* Reading a whole file into memory, for the small files omnigen parses (JSON configs, tokenizer
 * files) and the PNG the HTTP endpoint sends back. Checkpoints are mmap'd instead (safetensors.h). */
#ifndef OG_IO_FILE_H
#define OG_IO_FILE_H

#include <stddef.h>

#include "core/error.h"

/* Reads `path` into a malloc'd buffer with a NUL after the last byte (so text can be parsed in
 * place); *len is the byte count. OG_ERR_NOT_FOUND if the file does not exist, OG_ERR_IO if it
 * cannot be read, OG_ERR_FORMAT if it is larger than max_bytes. */
og_status og_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

#endif
