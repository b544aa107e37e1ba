{
  "targets": [
    {
      "target_name": "xattr",
      "sources": ["xattr.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
