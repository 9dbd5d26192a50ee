#define _GNU_SOURCE
#include "clab_shims.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// libnftables, loaded on first use. Linked at build time it would make every clab start load it
// and its dependencies (libnftnl, libmnl, libjansson, libgmp, libxtables): about 4 ms on every
// container start, stage 1 included, for something only stage 11 uses. Debian also ships it only
// as a shared library, so a static clab could not link it at all. The prototypes are those of
// <nftables/libnftables.h> (libnftables1, ABI 1).
struct nft_ctx;
static struct {
    struct nft_ctx *(*ctx_new)(uint32_t);
    void (*ctx_free)(struct nft_ctx *);
    void (*output_set_flags)(struct nft_ctx *, unsigned int);
    int (*buffer_output)(struct nft_ctx *);
    int (*buffer_error)(struct nft_ctx *);
    const char *(*get_output)(struct nft_ctx *);
    const char *(*get_error)(struct nft_ctx *);
    int (*run)(struct nft_ctx *, const char *);
} nft;
static pthread_once_t nft_once = PTHREAD_ONCE_INIT;
static const char *nft_missing = NULL;

static void nft_load(void) {
    void *lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        nft_missing = "libnftables.so.1 is missing: apt-get install libnftables1";
        return;
    }
    nft.ctx_new = (struct nft_ctx * (*)(uint32_t)) dlsym(lib, "nft_ctx_new");
    nft.ctx_free = (void (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_free");
    nft.output_set_flags = (void (*)(struct nft_ctx *, unsigned int))dlsym(lib, "nft_ctx_output_set_flags");
    nft.buffer_output = (int (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_buffer_output");
    nft.buffer_error = (int (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_buffer_error");
    nft.get_output = (const char *(*)(struct nft_ctx *))dlsym(lib, "nft_ctx_get_output_buffer");
    nft.get_error = (const char *(*)(struct nft_ctx *))dlsym(lib, "nft_ctx_get_error_buffer");
    nft.run = (int (*)(struct nft_ctx *, const char *))dlsym(lib, "nft_run_cmd_from_buffer");
    if (!nft.ctx_new || !nft.ctx_free || !nft.output_set_flags || !nft.buffer_output || !nft.buffer_error ||
        !nft.get_output || !nft.get_error || !nft.run)
        nft_missing = "libnftables.so.1 lacks the functions clab uses (libnftables1 1.0 or later is needed)";
}

int clab_nft_run(const char *script, int handles, char **output, char **error) {
    *output = NULL;
    *error = NULL;
    pthread_once(&nft_once, nft_load);
    if (nft_missing) {
        *error = strdup(nft_missing);
        return -2;
    }
    struct nft_ctx *ctx = nft.ctx_new(0 /* NFT_CTX_DEFAULT */);
    if (!ctx) {
        *error = strdup("cannot create a libnftables context");
        return -1;
    }
    // Buffered, so nothing reaches clab's own stdout/stderr.
    if (nft.buffer_output(ctx) != 0 || nft.buffer_error(ctx) != 0) {
        nft.ctx_free(ctx);
        *error = strdup("cannot buffer libnftables output");
        return -1;
    }
    if (handles) nft.output_set_flags(ctx, 1 << 3 /* NFT_CTX_OUTPUT_HANDLE */);
    int status = nft.run(ctx, script);
    const char *out = nft.get_output(ctx);
    const char *err = nft.get_error(ctx);
    *output = strdup(out ? out : "");
    *error = strdup(err ? err : "");
    nft.ctx_free(ctx);
    return status;
}
