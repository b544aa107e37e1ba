/*
 * Raw extended-attribute calls on paths, never following symlinks (the l* calls):
 *
 *   list(path), get(path, name), set(path, name, value, flags), remove(path, name)
 *
 * Paths are Buffers (any bytes); names are Buffers or strings; values are Buffers. Failures
 * throw Errors with Node-style `code` ("ENODATA", "ENOTSUP"…), `errno` (negative) and
 * `syscall`. The formats (ACLs, capabilities) are decoded in TypeScript.
 */
#include "addon.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* The path and attribute name arguments, as C strings the caller frees; false (with a JS
 * exception pending) when either is not acceptable. */
static bool path_and_name(napi_env env, napi_value *argv, char **path, char **name) {
  *path = c_string(env, argv[0], "path must be a Buffer or string without NUL");
  if (!*path) return false;
  *name = c_string(env, argv[1], "name must be a Buffer or string without NUL");
  if (!*name) { free(*path); return false; }
  return true;
}

static napi_value List(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (args(env, info, 1, argv) != napi_ok) return NULL;
  char *path = c_string(env, argv[0], "path must be a Buffer or string without NUL");
  if (!path) return NULL;
  /* Most entries have no attributes or a few short names: one call into a stack buffer.
     Only a longer list takes the size query and a heap buffer. */
  char small[1024];
  char *buf = small;
  ssize_t n = llistxattr(path, small, sizeof small);
  while (n < 0 && errno == ERANGE) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) break;
    if (buf != small) free(buf);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) { n = -1; errno = ENOMEM; break; }
    n = llistxattr(path, buf, (size_t)n);
  }
  free(path);
  if (n < 0) {
    int e = errno;
    if (buf != small) free(buf);
    return throw_errno(env, e, "llistxattr");
  }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t idx = 0;
  for (ssize_t i = 0; i < n;) {
    size_t len = strnlen(buf + i, (size_t)(n - i));
    napi_value name;
    void *copy;
    napi_create_buffer_copy(env, len, buf + i, &copy, &name);
    napi_set_element(env, result, idx++, name);
    i += (ssize_t)len + 1;
  }
  if (buf != small) free(buf);
  return result;
}

static napi_value Get(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (args(env, info, 2, argv) != napi_ok) return NULL;
  char *path, *name;
  if (!path_and_name(env, argv, &path, &name)) return NULL;
  char *buf = NULL;
  ssize_t n;
  for (;;) {
    n = lgetxattr(path, name, NULL, 0);
    if (n < 0) break;
    free(buf);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) { n = -1; errno = ENOMEM; break; }
    ssize_t m = lgetxattr(path, name, buf, (size_t)n);
    if (m >= 0) { n = m; break; }
    if (errno != ERANGE) { n = -1; break; }
  }
  int e = errno;
  free(path);
  free(name);
  if (n < 0) {
    free(buf);
    return throw_errno(env, e, "lgetxattr");
  }
  napi_value result;
  void *copy;
  napi_create_buffer_copy(env, (size_t)n, buf, &copy, &result);
  free(buf);
  return result;
}

static napi_value Set(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "EINVAL", "set(path, name, value[, flags])");
    return NULL;
  }
  bool is_buf = false;
  napi_is_buffer(env, argv[2], &is_buf);
  if (!is_buf) {
    napi_throw_type_error(env, "EINVAL", "value must be a Buffer");
    return NULL;
  }
  int32_t flags = 0;
  if (argc >= 4) napi_get_value_int32(env, argv[3], &flags);
  void *value;
  size_t len;
  napi_get_buffer_info(env, argv[2], &value, &len);
  char *path, *name;
  if (!path_and_name(env, argv, &path, &name)) return NULL;
  int r = lsetxattr(path, name, value, len, flags);
  int e = errno;
  free(path);
  free(name);
  if (r < 0) return throw_errno(env, e, "lsetxattr");
  return NULL;
}

static napi_value Remove(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (args(env, info, 2, argv) != napi_ok) return NULL;
  char *path, *name;
  if (!path_and_name(env, argv, &path, &name)) return NULL;
  int r = lremovexattr(path, name);
  int e = errno;
  free(path);
  free(name);
  if (r < 0) return throw_errno(env, e, "lremovexattr");
  return NULL;
}

void xattr_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "list", NULL, List, NULL, NULL, NULL, napi_enumerable, NULL },
    { "get", NULL, Get, NULL, NULL, NULL, napi_enumerable, NULL },
    { "set", NULL, Set, NULL, NULL, NULL, napi_enumerable, NULL },
    { "remove", NULL, Remove, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
