/*
 * SOL_NETLINK socket options for the netlink sockets the `netlink` npm package opens (it has
 * no setsockopt and does not expose its descriptor). The socket is found by its bound port id
 * (getsockname's nl_pid) among this process's descriptors, then NETLINK_EXT_ACK (the kernel's
 * message in error acks) and NETLINK_GET_STRICT_CHK (dump requests' filters honoured) are set
 * (include/uapi/linux/netlink.h; both since Linux 4.20). The request socket's receive buffer is raised
 * with SO_RCVBUFFORCE (socket(7): past net.core.rmem_max, needs CAP_NET_ADMIN), so that many requests
 * may be in flight without their answers overflowing it. The
 * socket's drop count (SO_MEMINFO, SK_MEMINFO_DROPS) tells answers lost to a full buffer on a socket
 * with NETLINK_NO_ENOBUFS, whose overflow then raises no socket error (see src/netlink/sockopt.ts).
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/*
 * This process's netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER...) bound to `port` (its nl_pid),
 * or -1. The protocol must match: port ids are unique per protocol only, and the first socket of each protocol
 * gets the process id.
 */
static int find_socket(uint32_t port, int wanted) {
  int found = -1;
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) return -1;
  struct dirent *e;
  while (found < 0 && (e = readdir(dir)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end != '\0' || fd < 0 || fd == dirfd(dir)) continue;
    struct sockaddr_nl addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getsockname((int)fd, (struct sockaddr *)&addr, &len) != 0 || addr.nl_family != AF_NETLINK || addr.nl_pid != port) continue;
    int protocol = -1;
    socklen_t plen = sizeof protocol;
    if (getsockopt((int)fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &plen) != 0 || protocol != wanted) continue;
    found = (int)fd;
  }
  closedir(dir);
  return found;
}

/* The optional netlink protocol argument at `index` (default NETLINK_ROUTE). */
static int protocol_arg(napi_env env, size_t argc, napi_value *argv, size_t index) {
  int32_t protocol = NETLINK_ROUTE;
  if (argc > index) napi_get_value_int32(env, argv[index], &protocol);
  return protocol;
}

/* setNetlinkOptions(portId, [[name, value], ...][, protocol]) -> the errno of the first failing option (0 = all set), or -1 when no socket has that port. */
static napi_value set_options(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t port = 0, count = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &port) != napi_ok || napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (portId, [[option, value], ...])");
    return NULL;
  }
  int fd = find_socket(port, protocol_arg(env, argc, argv, 2));
  int result = fd < 0 ? -1 : 0;
  for (uint32_t i = 0; fd >= 0 && i < count && result == 0; i++) {
    napi_value pair, v;
    int32_t name = 0, value = 0;
    napi_get_element(env, argv[1], i, &pair);
    napi_get_element(env, pair, 0, &v);
    napi_get_value_int32(env, v, &name);
    napi_get_element(env, pair, 1, &v);
    napi_get_value_int32(env, v, &value);
    if (setsockopt(fd, SOL_NETLINK, name, &value, sizeof value) != 0) result = errno;
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

/* forceRecvBuffer(portId, bytes[, protocol]) -> the errno of SO_RCVBUFFORCE (0 = set; EPERM without CAP_NET_ADMIN), or -1 when no socket has that port. */
static napi_value force_rcvbuf(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t port = 0;
  int32_t bytes = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &port) != napi_ok || napi_get_value_int32(env, argv[1], &bytes) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (portId, bytes)");
    return NULL;
  }
  int fd = find_socket(port, protocol_arg(env, argc, argv, 2));
  int result = fd < 0 ? -1 : (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0 ? errno : 0);
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

/* socketFd(portId[, protocol]) -> the descriptor of this process's netlink socket of that protocol bound to portId, or -1. */
static napi_value socket_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t port = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (portId)");
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, find_socket(port, protocol_arg(env, argc, argv, 1)), &out);
  return out;
}

/* socketDrops(fd) -> packets the socket dropped for a full receive buffer (SO_MEMINFO[SK_MEMINFO_DROPS], Linux >= 4.6), or -errno. */
static napi_value socket_drops(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (fd)");
    return NULL;
  }
  uint32_t meminfo[SK_MEMINFO_VARS];
  socklen_t len = sizeof meminfo;
  memset(meminfo, 0, sizeof meminfo);
  double result = getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) != 0 ? -(double)errno
      : len <= SK_MEMINFO_DROPS * sizeof(uint32_t) ? -(double)ENOPROTOOPT : (double)meminfo[SK_MEMINFO_DROPS];
  napi_value out;
  napi_create_double(env, result, &out);
  return out;
}

/*
 * attachFilter(fd, [code, jt, jf, k, ...]) -> 0 when the classic BPF program (struct sock_filter, linux/filter.h)
 * is attached with SO_ATTACH_FILTER (replacing any earlier one), or detached with SO_DETACH_FILTER when the array
 * is empty; else the errno (EINVAL: the kernel's checker refused the program).
 */
static napi_value attach_filter(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  uint32_t count = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_array_length(env, argv[1], &count) != napi_ok
      || count % 4 != 0 || count / 4 > BPF_MAXINSNS) {
    napi_throw_type_error(env, NULL, "expected (fd, [code, jt, jf, k, ...]) of at most BPF_MAXINSNS instructions");
    return NULL;
  }
  int result = 0;
  if (count == 0) {
    int unused = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) != 0 && errno != ENOENT) result = errno;
  } else {
    struct sock_filter *insns = calloc(count / 4, sizeof *insns);
    if (insns == NULL) result = ENOMEM;
    for (uint32_t i = 0; insns != NULL && i < count; i++) {
      napi_value v;
      uint32_t x = 0;
      napi_get_element(env, argv[1], i, &v);
      napi_get_value_uint32(env, v, &x);
      struct sock_filter *f = &insns[i / 4];
      switch (i % 4) {
        case 0: f->code = (uint16_t)x; break;
        case 1: f->jt = (uint8_t)x; break;
        case 2: f->jf = (uint8_t)x; break;
        default: f->k = x;
      }
    }
    if (insns != NULL) {
      struct sock_fprog prog = {.len = (unsigned short)(count / 4), .filter = insns};
      if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) result = errno;
      free(insns);
    }
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setNetlinkOptions", NULL, set_options, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forceRecvBuffer", NULL, force_rcvbuf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketFd", NULL, socket_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketDrops", NULL, socket_drops, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attachFilter", NULL, attach_filter, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
