/*
 * What the addon's calls share: Node-style errno errors (`code`, negative `errno`, `syscall`)
 * and reading arguments (Buffers or strings into C strings, a required argument count).
 */
#include "addon.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *errno_name(int e) {
  switch (e) {
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EROFS: return "EROFS";
    case EIO: return "EIO";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EINVAL: return "EINVAL";
    case EEXIST: return "EEXIST";
    case ENOMEM: return "ENOMEM";
    case EBADF: return "EBADF";
    case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return "EUNKNOWN";
  }
}

napi_value throw_errno(napi_env env, int e, const char *syscall) {
  char msg[128];
  napi_value err, code, message, num, sc;
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, strerror(e), errno_name(e));
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  napi_throw(env, err);
  return NULL;
}

/* Copies a Buffer or string argument into a NUL-terminated C string (caller frees). */
char *c_string(napi_env env, napi_value v, const char *what) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) {
    void *data;
    size_t len;
    napi_get_buffer_info(env, v, &data, &len);
    if (memchr(data, 0, len) != NULL) {
      napi_throw_type_error(env, "EINVAL", what);
      return NULL;
    }
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, data, len);
    s[len] = 0;
    return s;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

napi_status args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_status st = napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (st == napi_ok && argc < want) {
    napi_throw_type_error(env, "EINVAL", "missing arguments");
    return napi_invalid_arg;
  }
  return st;
}
