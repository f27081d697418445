/* The weight set: finds a component's safetensors files (through the shard index when there is
 * one), opens each, and merges their entries into one name-sorted table. */
#include "io/weights.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_file.h"
#include "io/safetensors.h"

typedef struct {
    const og_st_entry *entry;
    int file;
    float *f32; /* og_weights_vector_f32's copy, made on first request */
} w_item;

struct og_weights {
    char *source;
    int nfiles;
    og_st_file **files;
    int count;
    w_item *items; /* sorted by name */
    pthread_mutex_t lock;
};

void og_weights_free(og_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->count; i++)
        free(w->items[i].f32);
    free(w->items);
    for (int i = 0; i < w->nfiles; i++)
        og_st_close(w->files[i]);
    free(w->files);
    free(w->source);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static og_status weights_new(og_weights **out, const char *source, int nfiles)
{
    og_weights *w = calloc(1, sizeof *w);
    if (w) {
        pthread_mutex_init(&w->lock, NULL);
        w->source = strdup(source);
        w->files = calloc((size_t)nfiles + 1, sizeof *w->files);
    }
    if (!w || !w->source || !w->files) {
        og_weights_free(w);
        return og_fail(OG_ERR_OOM, "out of memory opening %s", source);
    }
    *out = w;
    return OG_OK;
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const w_item *)a)->entry->name, ((const w_item *)b)->entry->name);
}

/* Gathers the entries of all open files into the sorted table; a name in two files is refused. */
static og_status build_table(og_weights *w)
{
    int n = 0;
    for (int f = 0; f < w->nfiles; f++)
        n += og_st_count(w->files[f]);
    w->items = calloc((size_t)n + 1, sizeof *w->items);
    if (!w->items)
        return og_fail(OG_ERR_OOM, "out of memory indexing %d tensors of %s", n, w->source);
    for (int f = 0; f < w->nfiles; f++)
        for (int i = 0; i < og_st_count(w->files[f]); i++)
            w->items[w->count++] = (w_item){og_st_entry_at(w->files[f], i), f, NULL};
    qsort(w->items, (size_t)n, sizeof *w->items, item_cmp);
    for (int i = 1; i < n; i++)
        if (strcmp(w->items[i - 1].entry->name, w->items[i].entry->name) == 0)
            return og_fail(OG_ERR_FORMAT, "tensor \"%s\" is in both %s and %s",
                           w->items[i].entry->name, og_st_path(w->files[w->items[i - 1].file]),
                           og_st_path(w->files[w->items[i].file]));
    return OG_OK;
}

static const w_item *find_item(const og_weights *w, const char *name)
{
    og_st_entry e = {.name = name};
    w_item key = {.entry = &e};
    return bsearch(&key, w->items, (size_t)w->count, sizeof key, item_cmp);
}

static og_status open_files(og_weights *w, const char *dir, char **names, int n)
{
    char path[4096];
    for (int i = 0; i < n; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
            return og_fail(OG_ERR_INVALID_ARG, "path %s/%s is too long", dir, names[i]);
        OG_TRY(og_st_open(&w->files[w->nfiles], path));
        w->nfiles++;
    }
    return OG_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    int n, cap;
    char **v;
} name_list;

static og_status list_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return og_fail(OG_ERR_OOM, "out of memory listing files");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return og_fail(OG_ERR_OOM, "out of memory listing files");
    l->n++;
    return OG_OK;
}

static void list_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* The shard files an index names, in first-mention order; each must be a plain file name. */
static og_status index_shards(const char *index_path, const cJSON *map, name_list *shards)
{
    for (const cJSON *kv = map->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return og_fail(OG_ERR_FORMAT, "%s: weight_map entry \"%s\" is not a file name",
                           index_path, kv->string);
        const char *file = kv->valuestring;
        if (!file[0] || strchr(file, '/') || strcmp(file, "..") == 0 || strcmp(file, ".") == 0)
            return og_fail(OG_ERR_FORMAT, "%s: weight_map entry \"%s\" names \"%s\", which is not "
                           "a file in the same folder", index_path, kv->string, file);
        bool seen = false;
        for (int i = 0; i < shards->n && !seen; i++)
            seen = strcmp(shards->v[i], file) == 0;
        if (!seen)
            OG_TRY(list_add(shards, file));
    }
    return OG_OK;
}

/* Every weight_map entry must be in the shard it names. */
static og_status check_index(const og_weights *w, const char *index_path, const cJSON *map)
{
    for (const cJSON *kv = map->child; kv; kv = kv->next) {
        const w_item *it = find_item(w, kv->string);
        const char *path = it ? og_st_path(w->files[it->file]) : "";
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!it)
            return og_fail(OG_ERR_FORMAT, "%s maps \"%s\" to %s, but that shard lacks it",
                           index_path, kv->string, kv->valuestring);
        if (strcmp(base, kv->valuestring) != 0)
            return og_fail(OG_ERR_FORMAT, "%s maps \"%s\" to %s, but it is in %s", index_path,
                           kv->string, kv->valuestring, base);
    }
    return OG_OK;
}

static og_status open_indexed(og_weights **out, const char *dir, const char *index_name)
{
    char index_path[4096];
    if (snprintf(index_path, sizeof index_path, "%s/%s", dir, index_name) >= (int)sizeof index_path)
        return og_fail(OG_ERR_INVALID_ARG, "path %s/%s is too long", dir, index_name);
    cJSON *root;
    OG_TRY(og_json_load(index_path, &root));
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    name_list shards = {0};
    og_status s = OG_OK;
    if (!cJSON_IsObject(map))
        s = og_fail(OG_ERR_FORMAT, "%s has no \"weight_map\" object", index_path);
    if (s == OG_OK)
        s = index_shards(index_path, map, &shards);
    og_weights *w = NULL;
    if (s == OG_OK)
        s = weights_new(&w, dir, shards.n);
    if (s == OG_OK && (s = open_files(w, dir, shards.v, shards.n)) != OG_OK)
        og_fail_context(s, "a shard named by %s", index_path);
    if (s == OG_OK)
        s = build_table(w);
    if (s == OG_OK)
        s = check_index(w, index_path, map);
    list_free(&shards);
    cJSON_Delete(root);
    if (s != OG_OK) {
        og_weights_free(w);
        return s;
    }
    *out = w;
    return OG_OK;
}

og_status og_weights_open_dir(og_weights **out, const char *component_dir)
{
    *out = NULL;
    DIR *d = opendir(component_dir);
    if (!d)
        return og_fail(errno == ENOENT ? OG_ERR_NOT_FOUND : OG_ERR_IO, "cannot open folder %s: %s",
                       component_dir, strerror(errno));
    name_list index = {0}, files = {0};
    og_status s = OG_OK;
    for (struct dirent *de; s == OG_OK && (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        if (ends_with(de->d_name, ".safetensors.index.json"))
            s = list_add(&index, de->d_name);
        else if (ends_with(de->d_name, ".safetensors"))
            s = list_add(&files, de->d_name);
    }
    closedir(d);
    /* readdir order is arbitrary: sort, so shards load and messages read the same everywhere. */
    if (files.n > 1)
        qsort(files.v, (size_t)files.n, sizeof *files.v, str_cmp);
    if (index.n > 1)
        qsort(index.v, (size_t)index.n, sizeof *index.v, str_cmp);
    if (s == OG_OK && index.n > 1)
        s = og_fail(OG_ERR_FORMAT, "%s holds %d shard indexes (%s, %s%s); keep one", component_dir,
                    index.n, index.v[0], index.v[1], index.n > 2 ? ", ..." : "");
    else if (s == OG_OK && index.n == 1)
        s = open_indexed(out, component_dir, index.v[0]);
    else if (s == OG_OK && files.n == 0)
        s = og_fail(OG_ERR_NOT_FOUND, "no .safetensors file in %s", component_dir);
    else if (s == OG_OK) {
        og_weights *w = NULL;
        s = weights_new(&w, component_dir, files.n);
        if (s == OG_OK)
            s = open_files(w, component_dir, files.v, files.n);
        if (s == OG_OK)
            s = build_table(w);
        if (s == OG_OK)
            *out = w;
        else
            og_weights_free(w);
    }
    list_free(&index);
    list_free(&files);
    return s;
}

og_status og_weights_open_file(og_weights **out, const char *path)
{
    *out = NULL;
    og_weights *w = NULL;
    OG_TRY(weights_new(&w, path, 1));
    og_status s = og_st_open(&w->files[0], path);
    if (s == OG_OK) {
        w->nfiles = 1;
        s = build_table(w);
    }
    if (s != OG_OK) {
        og_weights_free(w);
        return s;
    }
    *out = w;
    return OG_OK;
}

const char *og_weights_source(const og_weights *w) { return w->source; }
int og_weights_count(const og_weights *w) { return w->count; }
const char *og_weights_name(const og_weights *w, int i) { return w->items[i].entry->name; }
bool og_weights_has(const og_weights *w, const char *name) { return find_item(w, name) != NULL; }

og_status og_weights_get(const og_weights *w, const char *name, og_tensor *out)
{
    const w_item *it = find_item(w, name);
    if (!it)
        return og_fail(OG_ERR_NOT_FOUND, "no tensor \"%s\" in %s", name, w->source);
    return og_st_entry_tensor(it->entry, og_st_path(w->files[it->file]), out);
}

og_status og_weights_expect(const og_weights *w, const char *name, int ndim, const int64_t *shape,
                            og_tensor *out)
{
    OG_TRY(og_weights_get(w, name, out));
    og_status s = og_tensor_expect(out, name, ndim, shape);
    if (s != OG_OK)
        return og_fail_context(s, "%s", w->source);
    return OG_OK;
}

og_status og_weights_vector_f32(og_weights *w, const char *name, int64_t n, float **out)
{
    og_tensor t;
    OG_TRY(og_weights_get(w, name, &t));
    if (og_tensor_numel(&t) != n) {
        char buf[160];
        return og_fail(OG_ERR_SHAPE, "%s: tensor \"%s\" has shape %s (%lld elements), expected %lld",
                       w->source, name, og_shape_str(buf, sizeof buf, t.ndim, t.shape),
                       (long long)og_tensor_numel(&t), (long long)n);
    }
    if (t.dtype != OG_F32 && t.dtype != OG_BF16 && t.dtype != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: tensor \"%s\" is %s; an f32 copy needs F32, BF16 "
                       "or F16", w->source, name, og_dtype_name(t.dtype));
    w_item *it = (w_item *)find_item(w, name);
    og_status s = OG_OK;
    pthread_mutex_lock(&w->lock);
    if (!it->f32) {
        it->f32 = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        if (it->f32 && n > 0)
            og_to_f32(it->f32, t.data, t.dtype, (size_t)n);
        else if (!it->f32)
            s = og_fail(OG_ERR_OOM, "out of memory copying tensor \"%s\"", name);
    }
    *out = it->f32;
    pthread_mutex_unlock(&w->lock);
    return s;
}
