{
  "targets": [
    {
      "target_name": "uplinkd_netlink",
      "sources": ["sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "uplinkd_nft",
      "sources": ["nft.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
