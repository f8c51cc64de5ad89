/*
 * Raw ICMP sockets for uplinkd's health probes (Node has none).
 * One socket per uplink: bound to the uplink's source address and device, non-blocking,
 * filtered to echo replies and the errors that quote our echo requests. libuv polls the
 * socket; JS is told "readable" and drains datagrams with recv(). Packets are built and
 * parsed in JS (src/health/icmp.ts); this file only moves bytes. Plain N-API: no V8
 * headers, so one build works on every Node version that has the same N-API.
 */
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int fd;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_readable;
  napi_async_context async;
  int closing;   /* close() was called: the poll handle is closing or closed */
  int closed;    /* libuv finished closing the poll handle and the fd is closed */
  int collected; /* the JS handle was garbage-collected: free when closed */
} icmp_socket;

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = "EIO";
  switch (err) {
    case EPERM: code = "EPERM"; break;
    case EACCES: code = "EACCES"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case ENODEV: code = "ENODEV"; break;
    case ENETUNREACH: code = "ENETUNREACH"; break;
    case EHOSTUNREACH: code = "EHOSTUNREACH"; break;
    case ENETDOWN: code = "ENETDOWN"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENOBUFS: code = "ENOBUFS"; break;
    case EMSGSIZE: code = "EMSGSIZE"; break;
  }
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok && len < size - 1;
}

static int get_ipv4(napi_env env, napi_value v, struct in_addr *out) {
  char text[64];
  return get_string(env, v, text, sizeof text) && inet_pton(AF_INET, text, out) == 1;
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  icmp_socket *s = handle->data;
  if (s->closing) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv;
  if (napi_get_reference_value(env, s->on_readable, &cb) == napi_ok) {
    napi_get_global(env, &recv);
    /* make_callback drains the microtask queue, so promises settled in cb run now */
    if (napi_make_callback(env, s->async, recv, cb, 0, NULL, NULL) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) {
  icmp_socket *s = handle->data;
  close(s->fd);
  s->closed = 1;
  if (s->collected) free(s);
}

static void start_close(napi_env env, icmp_socket *s) {
  s->closing = 1;
  napi_delete_reference(env, s->on_readable);
  napi_async_destroy(env, s->async);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

/* The struct outlives close() until the JS handle is collected, so a closed handle stays safe to pass. */
static void on_collected(napi_env env, void *data, void *hint) {
  (void)hint;
  icmp_socket *s = data;
  s->collected = 1;
  if (!s->closing) start_close(env, s);
  else if (s->closed) free(s);
}

static icmp_socket *get_socket(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "expected an ICMP socket handle");
    return NULL;
  }
  icmp_socket *s = p;
  if (s->closing) {
    napi_throw_error(env, "ECLOSED", "ICMP socket is closed");
    return NULL;
  }
  return s;
}

/* open(source: string, device: string | null, onReadable: () => void): handle */
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "open(source, device, onReadable)");
    return NULL;
  }
  struct sockaddr_in src = {.sin_family = AF_INET};
  if (!get_ipv4(env, argv[0], &src.sin_addr)) {
    napi_throw_type_error(env, NULL, "source must be an IPv4 address");
    return NULL;
  }
  char device[64] = "";
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t == napi_string && !get_string(env, argv[1], device, sizeof device)) {
    napi_throw_type_error(env, NULL, "device name too long");
    return NULL;
  }
  napi_typeof(env, argv[2], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "onReadable must be a function");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", errno);
  struct icmp_filter filter = {
      .data = ~((1U << ICMP_ECHOREPLY) | (1U << ICMP_DEST_UNREACH) | (1U << ICMP_TIME_EXCEEDED))};
  if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "setsockopt(ICMP_FILTER)", err);
  }
  if (device[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, strlen(device) + 1) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "setsockopt(SO_BINDTODEVICE)", err);
  }
  if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }

  icmp_socket *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->env = env;
  uv_loop_t *loop = NULL;
  napi_value name;
  napi_create_string_utf8(env, "uplinkd_icmp", NAPI_AUTO_LENGTH, &name);
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0 ||
      napi_async_init(env, NULL, name, &s->async) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &s->on_readable) != napi_ok) {
    close(fd);
    free(s);
    napi_throw_error(env, "EIO", "cannot attach the ICMP socket to the event loop");
    return NULL;
  }
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  napi_value handle;
  napi_create_external(env, s, on_collected, NULL, &handle);
  return handle;
}

/* send(handle, destination: string, packet: Buffer): void; throws on errno */
static napi_value send_packet(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  icmp_socket *s = argc == 3 ? get_socket(env, argv[0]) : NULL;
  if (!s) return NULL;
  struct sockaddr_in dst = {.sin_family = AF_INET};
  if (!get_ipv4(env, argv[1], &dst.sin_addr)) {
    napi_throw_type_error(env, NULL, "destination must be an IPv4 address");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "packet must be a Buffer");
    return NULL;
  }
  if (sendto(s->fd, data, len, 0, (struct sockaddr *)&dst, sizeof dst) < 0)
    return throw_errno(env, "sendto", errno);
  return NULL;
}

/* recv(handle, into: Buffer): [length, source] | null when nothing is waiting */
static napi_value recv_packet(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  icmp_socket *s = argc == 2 ? get_socket(env, argv[0]) : NULL;
  if (!s) return NULL;
  void *data = NULL;
  size_t size = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) {
    napi_throw_type_error(env, NULL, "into must be a Buffer");
    return NULL;
  }
  struct sockaddr_in from;
  socklen_t fromlen = sizeof from;
  ssize_t n = recvfrom(s->fd, data, size, MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
  napi_value result;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      napi_get_null(env, &result);
      return result;
    }
    return throw_errno(env, "recvfrom", errno);
  }
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
  napi_value length, source;
  napi_create_array_with_length(env, 2, &result);
  napi_create_uint32(env, (uint32_t)n, &length);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &source);
  napi_set_element(env, result, 0, length);
  napi_set_element(env, result, 1, source);
  return result;
}

/* close(handle): void; idempotent */
static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "expected an ICMP socket handle");
    return NULL;
  }
  icmp_socket *s = p;
  if (!s->closing) start_close(env, s);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, send_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, recv_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_socket, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
