/* A variant of a fixture VAE folder for a path the committed fixtures lack: the same decoder with
 * a post_quant_conv (use_post_quant_conv true, a 1x1 conv near the identity), written to a
 * temporary folder that og_test_vae_remove deletes. And the case loop of the Wan-shaped VAE
 * fixtures (tests/fixtures/wan/vae, tests/fixtures/qwenimage/vae). */
#ifndef OG_TEST_VAE_TESTUTIL_H
#define OG_TEST_VAE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "testutil.h"
#include "vae/autoencoder_kl_wan.h"

#define OG_TEST_VAE_WEIGHTS "diffusion_pytorch_model.safetensors"

static inline void og_test_vae_remove(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/" OG_TEST_VAE_WEIGHTS, dir);
    unlink(path);
    rmdir(dir);
}

/* Fills dir (at least 64 bytes) with the new folder's path; false (after a message) on failure. */
static inline bool og_test_vae_post_quant(const char *src, char *dir)
{
    char path[512];
    strcpy(dir, "/tmp/og_test_vae_pq_XXXXXX");
    if (!mkdtemp(dir))
        return false;
    snprintf(path, sizeof path, "%s/config.json", src);
    char *cfg = og_test_read_file(path, NULL);
    const char *key = "\"use_post_quant_conv\": false";
    char *at = cfg ? strstr(cfg, key) : NULL;
    bool ok = at != NULL;
    if (ok) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        ok = f && fprintf(f, "%.*s\"use_post_quant_conv\": true%s", (int)(at - cfg), cfg,
                          at + strlen(key)) > 0;
        ok &= f && fclose(f) == 0;
    }
    free(cfg);
    og_st_file *st = NULL;
    snprintf(path, sizeof path, "%s/" OG_TEST_VAE_WEIGHTS, src);
    ok = ok && og_st_open(&st, path) == OG_OK;
    const int n = ok ? og_st_count(st) : 0;
    const char **names = calloc((size_t)n + 2, sizeof *names);
    og_tensor *ts = calloc((size_t)n + 2, sizeof *ts);
    const og_st_entry *conv_in = ok ? og_st_find(st, "decoder.conv_in.weight") : NULL;
    ok = ok && names && ts && conv_in && conv_in->ndim == 4;
    for (int i = 0; ok && i < n; i++) {
        names[i] = og_st_entry_at(st, i)->name;
        ok = og_st_entry_tensor(og_st_entry_at(st, i), path, &ts[i]) == OG_OK;
    }
    const int64_t c = ok ? conv_in->shape[1] : 0;
    float *w = ok ? malloc(sizeof(float) * (size_t)(c * c + c)) : NULL;
    ok = ok && w;
    if (ok) {
        float *b = w + c * c;
        og_test_rng rng = {0x9a0};
        og_test_fill(&rng, w, (size_t)(c * c + c), 0.1f);
        for (int64_t i = 0; i < c; i++)
            w[i * c + i] += 0.8f;
        names[n] = "post_quant_conv.weight";
        ts[n] = og_tensor_make(w, OG_F32, 4, (int64_t[]){c, c, 1, 1});
        names[n + 1] = "post_quant_conv.bias";
        ts[n + 1] = og_tensor_make(b, OG_F32, 1, (int64_t[]){c});
        snprintf(path, sizeof path, "%s/" OG_TEST_VAE_WEIGHTS, dir);
        ok = og_st_write(path, n + 2, names, ts, NULL) == OG_OK;
    }
    free(w);
    free(names);
    free(ts);
    og_st_close(st);
    if (!ok) {
        fprintf(stderr, "cannot write a post_quant_conv variant of %s: %s\n", src,
                og_error_message());
        og_test_vae_remove(dir);
    }
    return ok;
}

/* Loads dir/vae and runs check(vae, st, dir, case) on every case of dir/cases.safetensors: each
 * entry named <case><suffix>. Returns 1 when there was at least one case (a fixture variant
 * without any fails). */
static inline int og_test_wan_vae_cases(const char *dir, const char *suffix,
                                        void (*check)(og_wan_vae *vae, og_st_file *st,
                                                      const char *dir, const char *name))
{
    char path[1024];
    og_st_file *st;
    snprintf(path, sizeof path, "%s/cases.safetensors", dir);
    og_status s = og_st_open(&st, path);
    CHECK_OK(s);
    if (s != OG_OK)
        return 0;
    og_wan_vae *vae;
    snprintf(path, sizeof path, "%s/vae", dir);
    s = og_wan_vae_load(&vae, path);
    CHECK_OK(s);
    int cases = 0;
    const size_t m = strlen(suffix);
    for (int i = 0; s == OG_OK && i < og_st_count(st); i++) {
        const char *name = og_st_entry_at(st, i)->name;
        const size_t n = strlen(name);
        if (n < m || strcmp(name + n - m, suffix) != 0)
            continue;
        char base[200];
        snprintf(base, sizeof base, "%.*s", (int)(n - m), name);
        check(vae, st, dir, base);
        cases++;
    }
    CHECK(s != OG_OK || cases > 0, "%s: no cases", dir);
    og_wan_vae_free(vae);
    og_st_close(st);
    return cases > 0;
}

#endif
