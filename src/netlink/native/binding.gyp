{
  "targets": [
    {
      "target_name": "uplinkd_netlink",
      "sources": ["sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
