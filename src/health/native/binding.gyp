{
  "targets": [
    {
      "target_name": "uplinkd_icmp",
      "sources": ["icmp.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
