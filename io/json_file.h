/* Reading a whole JSON file with cJSON, shared by the weight index and the diffusers configs. */
#ifndef OG_IO_JSON_FILE_H
#define OG_IO_JSON_FILE_H

#include <cjson/cJSON.h>

#include "core/error.h"

/* OG_ERR_NOT_FOUND naming the path if it does not exist, OG_ERR_IO if it cannot be read,
 * OG_ERR_FORMAT with the line and column if it is not valid JSON. Free with cJSON_Delete. */
og_status og_json_load(const char *path, cJSON **out);

#endif
