/* The addon's files: util.c's helpers (Node-style errno errors, arguments), and each call file's registration. */
#ifndef LAFS_ADDON_H
#define LAFS_ADDON_H
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>

napi_value throw_errno(napi_env env, int e, const char *syscall);
char *c_string(napi_env env, napi_value v, const char *what);
napi_status args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
void xattr_init(napi_env env, napi_value exports);
void at_init(napi_env env, napi_value exports);
void scan_init(napi_env env, napi_value exports);

#endif
