{
  "targets": [
    {
      "target_name": "xattr",
      "sources": ["xattr.c", "at.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
