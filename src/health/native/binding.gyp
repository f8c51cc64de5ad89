{
  "targets": [
    {
      "target_name": "uplinkd_icmp",
      "sources": ["icmp.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now"]
    }
  ]
}
