/*
 * lafs-backup's native addon: raw extended-attribute calls (xattr.c) and the few *at system
 * calls Node lacks, for a restore that stays beneath its destination (at.c), and phase 1's
 * walk of one directory in one call (scan.c). This file only registers them; each of the three
 * is self-contained (util.c has the errno errors and argument
 * helpers both use). src/native.ts loads the addon.
 */
#include "addon.h"

static napi_value Init(napi_env env, napi_value exports) {
  xattr_init(env, exports);
  at_init(env, exports);
  scan_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
