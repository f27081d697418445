/* Mutated copies of a valid file (flipped header bytes, JSON punctuation and digits dropped in,
 * truncations): og_st_open must refuse each with a status and a message, or accept it with every
 * tensor's bytes readable and consistent with its shape. Run under ASan/UBSan this is the
 * "never a crash" check; the seed is fixed, so a failure reproduces. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_safetensors_common.h"

int main(void)
{
    size_t n = 0;
    unsigned char *orig = og_test_read_file(ST_FIXTURES "/valid/dtypes.safetensors", &n);
    if (!orig) {
        fprintf(stderr, "cannot read the fixture\n");
        return 1;
    }
    size_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | orig[i];
    /* Memory-backed when possible: 1500 file writes on a busy disk take seconds. */
    char path[64];
    snprintf(path, sizeof path, "%s/og_st_fuzz_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);

    static const char punct[] = "\"[]{},:-.e0123456789 \\";
    unsigned char *buf = malloc(n);
    og_test_rng rng = {0x5AFE7E57ull};
    int accepted = 0, refused = 0;
    enum { ROUNDS = 1500 };
    for (int r = 0; r < ROUNDS; r++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + (int)(og_test_next(&rng) % 3);
        for (int e = 0; e < edits; e++) {
            uint64_t kind = og_test_next(&rng) % 8;
            /* Most edits land in the length field or the header, where the parsing is. */
            size_t at = (size_t)(og_test_next(&rng) % (8 + hlen));
            if (kind < 3)
                buf[at] = (unsigned char)og_test_next(&rng);
            else if (kind < 6)
                buf[at] = (unsigned char)punct[og_test_next(&rng) % (sizeof punct - 1)];
            else if (kind == 6)
                len = (size_t)(og_test_next(&rng) % (len + 1));
            else
                buf[og_test_next(&rng) % 8] ^= (unsigned char)(1u << (og_test_next(&rng) % 8));
        }
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(buf, 1, len, fp) != len) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(fp);

        og_st_file *f = NULL;
        og_clear_error();
        og_status s = og_st_open(&f, path);
        if (s != OG_OK) {
            CHECK(f == NULL && og_error_message()[0] != '\0', "round %d: refused without a message", r);
            refused++;
            continue;
        }
        accepted++;
        for (int i = 0; i < og_st_count(f); i++) {
            const og_st_entry *e = og_st_entry_at(f, i);
            unsigned sum = 0;
            for (uint64_t b = 0; b < e->nbytes; b++)
                sum += ((const unsigned char *)e->data)[b];
            (void)sum;
            og_tensor t;
            if (og_st_get(f, e->name, &t) == OG_OK)
                CHECK(og_tensor_nbytes(&t) == e->nbytes, "round %d: %s has %zu bytes for %llu", r,
                      e->name, og_tensor_nbytes(&t), (unsigned long long)e->nbytes);
        }
        og_st_close(f);
    }
    unlink(path);
    free(buf);
    free(orig);
    /* Both outcomes must occur, or the mutations are not reaching the parser. */
    CHECK(refused > ROUNDS / 2 && accepted > 0, "accepted %d, refused %d", accepted, refused);
    printf("fuzz: %d accepted, %d refused\n", accepted, refused);
    return og_test_finish("test_safetensors_fuzz");
}
