// One request/answer exchange on the daemon's unix control socket, synchronously: the client side of
// src/daemon/control.ts for the CLI (src/daemon/control-client.ts). node:net would do the same, but
// loading it and the stream modules it needs is most of a short `uplinkd status` (docs/benchmarks.md,
// section 6); blocking calls need no event loop either. connect(2), send(2), poll(2), recv(2) on an
// AF_UNIX SOCK_STREAM socket (unix(7)).
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// An answer larger than this is refused rather than grown without bound.
#define MAX_ANSWER (64u << 20)

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Throws an Error whose .code is the errno's name (ENOENT, ECONNREFUSED, ...), as Node's own errors.
static napi_value throw_errno(napi_env env, int err, const char *what) {
  char code[32];
  const char *name = strerrorname_np(err);
  if (name == NULL) {
    snprintf(code, sizeof code, "E%d", err);
    name = code;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name, msg);
  return NULL;
}

// Waits until fd is ready for `events` or the deadline passes; 0, or an errno (ETIMEDOUT).
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
    if (n > 0) return 0;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

// query(path: string, request: string, timeoutMs: number): string
// Connects to `path`, sends `request` whole, and returns what arrives up to the first '\n' (excluded).
// Throws Error with .code = errno name: connect's (ENOENT, ECONNREFUSED, EACCES, ENAMETOOLONG for a path
// longer than sun_path), ETIMEDOUT when no full line came within timeoutMs, EPROTO when the peer closed
// before a full line, EMSGSIZE for a line over MAX_ANSWER bytes.
static napi_value query(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "query(path, request, timeoutMs)");
    return NULL;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t path_len;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a string");
    return NULL;
  }
  if (path_len >= sizeof addr.sun_path) return throw_errno(env, ENAMETOOLONG, "connect");
  napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &path_len);
  size_t req_len;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &req_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "request must be a string");
    return NULL;
  }
  double timeout;
  if (napi_get_value_double(env, argv[2], &timeout) != napi_ok || !(timeout >= 0)) {
    napi_throw_type_error(env, NULL, "timeoutMs must be a number >= 0");
    return NULL;
  }
  char *req = malloc(req_len + 1);
  char *buf = NULL;
  size_t cap = 0, len = 0;
  int fd = -1, err = 0;
  const char *what = "connect";
  if (req == NULL) { err = ENOMEM; goto out; }
  napi_get_value_string_utf8(env, argv[1], req, req_len + 1, &req_len);
  int64_t deadline = now_ms() + (int64_t)timeout;

  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) { err = errno; what = "socket"; goto out; }
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    // A non-blocking unix stream connect fails with EAGAIN while the listener's backlog is full, and
    // nothing goes on in the background (unix(7)): try again, briefly, until the deadline.
    if (errno == EAGAIN) {
      if (now_ms() >= deadline) { err = ETIMEDOUT; goto out; }
      poll(NULL, 0, 2);
      continue;
    }
    if (errno != EINPROGRESS && errno != EINTR) { err = errno; goto out; }
    if ((err = wait_for(fd, POLLOUT, deadline)) != 0) goto out;
    socklen_t sl = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0) err = errno;
    if (err != 0) goto out;
    break;
  }
  what = "send";
  for (size_t sent = 0; sent < req_len;) {
    ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
    if (n >= 0) { sent += (size_t)n; continue; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) { err = errno; goto out; }
    if ((err = wait_for(fd, POLLOUT, deadline)) != 0) goto out;
  }
  what = "recv";
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_ANSWER) { err = EMSGSIZE; goto out; }
      cap = cap ? cap * 2 : 16384;
      char *grown = realloc(buf, cap);
      if (grown == NULL) { err = ENOMEM; goto out; }
      buf = grown;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n > 0) {
      char *nl = memchr(buf + len, '\n', (size_t)n);
      len += (size_t)n;
      if (nl != NULL) { len = (size_t)(nl - buf); break; }
      continue;
    }
    if (n == 0) { err = EPROTO; goto out; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) { err = errno; goto out; }
    if ((err = wait_for(fd, POLLIN, deadline)) != 0) goto out;
  }
out:
  if (fd >= 0) close(fd);
  free(req);
  napi_value result = NULL;
  if (err != 0) throw_errno(env, err, what);
  else napi_create_string_utf8(env, buf ? buf : "", len, &result);
  free(buf);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "query", NAPI_AUTO_LENGTH, query, NULL, &fn);
  napi_set_named_property(env, exports, "query", fn);
  return exports;
}
