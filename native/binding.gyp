{
  "targets": [
    {
      "target_name": "lafs",
      "sources": ["addon.c", "util.c", "xattr.c", "at.c", "scan.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
