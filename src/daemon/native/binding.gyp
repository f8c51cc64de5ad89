{
  "targets": [
    {
      "target_name": "uplinkd_control",
      "sources": ["query.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
