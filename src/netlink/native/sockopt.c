/*
 * SOL_NETLINK socket options for the netlink sockets the `netlink` npm package opens (it has
 * no setsockopt and does not expose its descriptor). The socket is found by its bound port id
 * (getsockname's nl_pid) among this process's descriptors, then NETLINK_EXT_ACK (the kernel's
 * message in error acks) and NETLINK_GET_STRICT_CHK (dump requests' filters honoured) are set
 * (include/uapi/linux/netlink.h; both since Linux 4.20).
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* setNetlinkOptions(portId, [[name, value], ...]) -> the errno of the first failing option (0 = all set), or -1 when no socket has that port. */
static napi_value set_options(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t port = 0, count = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &port) != napi_ok || napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (portId, [[option, value], ...])");
    return NULL;
  }
  int found = -1;
  DIR *dir = opendir("/proc/self/fd");
  if (dir != NULL) {
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
      if (getsockopt((int)fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &plen) != 0 || protocol != NETLINK_ROUTE) continue;
      found = 0;
      for (uint32_t i = 0; i < count && found == 0; i++) {
        napi_value pair, v;
        int32_t name = 0, value = 0;
        napi_get_element(env, argv[1], i, &pair);
        napi_get_element(env, pair, 0, &v);
        napi_get_value_int32(env, v, &name);
        napi_get_element(env, pair, 1, &v);
        napi_get_value_int32(env, v, &value);
        if (setsockopt((int)fd, SOL_NETLINK, name, &value, sizeof value) != 0) found = errno;
      }
    }
    closedir(dir);
  }
  napi_value out;
  napi_create_int32(env, found, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setNetlinkOptions", NULL, set_options, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
