/*
 * nftables commands in-process through libnftables, the library the `nft` tool is built on (Debian
 * package libnftables1, a dependency of package nftables), instead of one `nft` process per command.
 * The library is dlopen()ed by nftLoad, so neither building nor loading this addon needs it: the
 * few prototypes below are those of nftables' include/nftables/libnftables.h (stable since 0.9.0).
 * A command runs as napi async work on the libuv thread pool, so the event loop never waits for the
 * kernel; one nft_ctx is made at first use and kept (it holds its nfnetlink socket and the ruleset
 * cache, which nft revalidates by the ruleset generation before each command). libnftables contexts
 * are not thread-safe: every use of it holds `lock`.
 */
#include <node_api.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nft_ctx;

/* libnftables.h: NFT_CTX_DEFAULT for nft_ctx_new, NFT_CTX_OUTPUT_JSON (1 << 4) for `nft -j`. */
#define NFT_CTX_DEFAULT 0
#define NFT_CTX_OUTPUT_JSON (1u << 4)

static struct {
  struct nft_ctx *(*ctx_new)(uint32_t flags);
  void (*ctx_free)(struct nft_ctx *ctx);
  void (*output_set_flags)(struct nft_ctx *ctx, unsigned int flags);
  int (*buffer_output)(struct nft_ctx *ctx);
  int (*buffer_error)(struct nft_ctx *ctx);
  int (*run_cmd_from_buffer)(struct nft_ctx *ctx, const char *buf);
  const char *(*get_output_buffer)(struct nft_ctx *ctx);
  const char *(*get_error_buffer)(struct nft_ctx *ctx);
} nft;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* dlopen + dlsym done (successfully or not); why it failed ('' when it did not). */
static bool resolved;
static char load_error[512];
static struct nft_ctx *ctx;

#define SYMBOL(field, name)                                                                   \
  do {                                                                                       \
    *(void **)(&nft.field) = dlsym(lib, name);                                               \
    if (nft.field == NULL) {                                                                 \
      snprintf(load_error, sizeof load_error, "%.256s has no %s", file, name);                \
      return;                                                                                \
    }                                                                                        \
  } while (0)

/* Resolves the library `file` once (later calls keep the first outcome); call with `lock` held. The handle is never closed: the context lives as long as the process. */
static void resolve(const char *file) {
  if (resolved) return;
  resolved = true;
  void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    snprintf(load_error, sizeof load_error, "%s", e ? e : "dlopen failed");
    return;
  }
  SYMBOL(ctx_new, "nft_ctx_new");
  SYMBOL(ctx_free, "nft_ctx_free");
  SYMBOL(output_set_flags, "nft_ctx_output_set_flags");
  SYMBOL(buffer_output, "nft_ctx_buffer_output");
  SYMBOL(buffer_error, "nft_ctx_buffer_error");
  SYMBOL(run_cmd_from_buffer, "nft_run_cmd_from_buffer");
  SYMBOL(get_output_buffer, "nft_ctx_get_output_buffer");
  SYMBOL(get_error_buffer, "nft_ctx_get_error_buffer");
}

/* nftLoad(file) -> '' when the library `file` (normally "libnftables.so.1") is loaded and has every function used here, else why not (dlerror's text). */
static napi_value nft_load(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char file[4096];
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], file, sizeof file, NULL) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (file: string)");
    return NULL;
  }
  pthread_mutex_lock(&lock);
  resolve(file);
  napi_value out;
  napi_create_string_utf8(env, load_error, NAPI_AUTO_LENGTH, &out);
  pthread_mutex_unlock(&lock);
  return out;
}

struct job {
  napi_async_work work;
  napi_deferred deferred;
  char *command;
  bool json;
  int code;
  char *out;
  char *err;
};

static char *copy(const char *s) {
  return strdup(s ? s : "");
}

/* On a thread-pool thread: the command through the shared context, its buffered output and errors copied out. */
static void execute(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  pthread_mutex_lock(&lock);
  if (!resolved || load_error[0] != '\0') {
    j->code = -1;
    j->err = copy(resolved ? load_error : "nftLoad was not called");
  } else {
    if (ctx == NULL) {
      ctx = nft.ctx_new(NFT_CTX_DEFAULT);
      if (ctx != NULL && (nft.buffer_output(ctx) != 0 || nft.buffer_error(ctx) != 0)) {
        nft.ctx_free(ctx); /* its output would go to this process's stdout: tried again next time */
        ctx = NULL;
      }
    }
    if (ctx == NULL) {
      j->code = -1;
      j->err = copy("nft_ctx_new failed (out of memory, or no netlink socket)");
    } else {
      nft.output_set_flags(ctx, j->json ? NFT_CTX_OUTPUT_JSON : 0);
      /* nft(8) exits 1 (NFT_EXIT_FAILURE) whenever nft_run_cmd_from_buffer fails; the same code here. */
      j->code = nft.run_cmd_from_buffer(ctx, j->command) == 0 ? 0 : 1;
      /* Reading a buffer also rewinds it for the next command: both are read every time. */
      j->out = copy(nft.get_output_buffer(ctx));
      j->err = copy(nft.get_error_buffer(ctx));
    }
  }
  pthread_mutex_unlock(&lock);
}

static void complete(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  napi_value result, v;
  if (status == napi_ok && j->out != NULL && j->err != NULL) {
    napi_create_object(env, &result);
    napi_create_int32(env, j->code, &v);
    napi_set_named_property(env, result, "code", v);
    napi_create_string_utf8(env, j->out, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "stdout", v);
    napi_create_string_utf8(env, j->err, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "stderr", v);
    napi_resolve_deferred(env, j->deferred, result);
  } else if (status == napi_ok && j->code < 0) {
    napi_value msg;
    napi_create_string_utf8(env, j->err ? j->err : "libnftables failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, "nft command was cancelled or out of memory", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
  }
  napi_delete_async_work(env, j->work);
  free(j->command);
  free(j->out);
  free(j->err);
  free(j);
}

/*
 * nftRun(command, json) -> Promise<{code, stdout, stderr}>: `command` as `nft [-j] -f -` would read
 * it (one or more lines); code 0 or 1 as nft(8) exits. Rejects only when the library cannot be used
 * (not loaded, no context): the caller then falls back to the nft program.
 */
static napi_value nft_run(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t len = 0;
  bool json = false;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || napi_get_value_bool(env, argv[1], &json) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (command: string, json: boolean)");
    return NULL;
  }
  struct job *j = calloc(1, sizeof *j);
  char *command = j ? malloc(len + 1) : NULL;
  if (command == NULL) {
    free(j);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], command, len + 1, &len);
  j->command = command;
  j->json = json;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "uplinkd:nft", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"nftLoad", NULL, nft_load, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftRun", NULL, nft_run, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
