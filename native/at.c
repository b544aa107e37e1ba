/*
 * The *at system calls Node lacks, so that a restore reaches everything relative to DEST's
 * directory descriptor and never through a symlink, whatever the backup says and whatever
 * another process does meanwhile:
 *
 *   openBeneath(dirfd, relpath, flags[, mode]) -> fd   openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
 *                                                      on kernels without openat2, one openat
 *                                                      (O_NOFOLLOW | O_DIRECTORY) per component
 *   mkdirat(dirfd, name, mode)        renameat(dirfd, old, newdirfd, new)
 *   unlinkat(dirfd, name, flags)      symlinkat(target, dirfd, name)
 *   linkat(olddirfd, oldname, newdirfd, newname, flags)
 *   fchownat(dirfd, name, uid, gid, flags)
 *   utimensat(dirfd, name | null, seconds (BigInt), nanoseconds, flags)   (null: futimens(dirfd))
 *   fstatatMode(dirfd, name, flags) -> st_mode         fsetxattr(fd, name, value, flags)
 *   lstatAt(dirfd, name, out) -> 0 | errno | -1        fstatat(AT_SYMLINK_NOFOLLOW) into a
 *                                                      BigInt64Array: mode, nlink, dev, ino,
 *                                                      size, mtime ns, ctime ns, uid, gid
 *                                                      (-1: a time beyond 64-bit nanoseconds)
 *
 * Names and paths are Buffers (any bytes but NUL). Failures throw errors with a Node-style
 * `code`, `errno` and `syscall`, as the xattr calls do.
 */
#define _GNU_SOURCE
#include "addon.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static bool get_int(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected an integer");
    return false;
  }
  return true;
}

static napi_value make_int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* A name argument as a C string (the caller frees it); NULL with an exception pending. */
static char *name_arg(napi_env env, napi_value v) {
  return c_string(env, v, "names must be Buffers or strings without NUL");
}

/* What a call returns to JavaScript: undefined, or the errno of a failed call, thrown. */
static napi_value done(napi_env env, int r, int e, const char *syscall) {
  return r < 0 ? throw_errno(env, e, syscall) : NULL;
}

/* renameat and linkat: (olddirfd, oldname, newdirfd, newname[, flags]). */
static napi_value two_names(napi_env env, napi_callback_info info, bool link) {
  napi_value argv[5];
  if (args(env, info, link ? 5 : 4, argv) != napi_ok) return NULL;
  int32_t olddir, newdir, flags = 0;
  if (!get_int(env, argv[0], &olddir) || !get_int(env, argv[2], &newdir) || (link && !get_int(env, argv[4], &flags))) return NULL;
  char *oldname = name_arg(env, argv[1]);
  if (!oldname) return NULL;
  char *newname = name_arg(env, argv[3]);
  if (!newname) {
    free(oldname);
    return NULL;
  }
  int r = link ? linkat(olddir, oldname, newdir, newname, flags) : renameat(olddir, oldname, newdir, newname);
  int e = errno;
  free(oldname);
  free(newname);
  return done(env, r, e, link ? "linkat" : "renameat");
}

/* Without openat2: walk the components, refusing '.', '..' and every symlink. */
static int open_by_components(int dirfd, char *rel, int flags, mode_t mode) {
  int cur = dirfd;
  char *save = NULL;
  char *part = strtok_r(rel, "/", &save);
  if (!part) return openat(dirfd, ".", flags | O_CLOEXEC, mode);
  for (;;) {
    char *next = strtok_r(NULL, "/", &save);
    if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
      if (cur != dirfd) close(cur);
      errno = EXDEV;
      return -1;
    }
    if (!next) {
      int fd = openat(cur, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
      int e = errno;
      if (cur != dirfd) close(cur);
      errno = e;
      return fd;
    }
    int fd = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (cur != dirfd) close(cur);
    if (fd < 0) {
      errno = e;
      return -1;
    }
    cur = fd;
    part = next;
  }
}

static napi_value OpenBeneath(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "EINVAL", "openBeneath(dirfd, relpath, flags[, mode])");
    return NULL;
  }
  int32_t dirfd, flags, mode = 0;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &flags)) return NULL;
  if (argc >= 4 && !get_int(env, argv[3], &mode)) return NULL;
  char *rel = c_string(env, argv[1], "relpath must be a Buffer or string without NUL");
  if (!rel) return NULL;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? (unsigned long long)mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dirfd, rel[0] ? rel : ".", &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) fd = open_by_components(dirfd, rel, flags, (mode_t)mode);
  int e = errno;
  free(rel);
  if (fd < 0) return throw_errno(env, e, "openat2");
  return make_int(env, (int32_t)fd);
}

static napi_value Mkdirat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) != napi_ok) return NULL;
  int32_t dirfd, mode;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &mode)) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) return NULL;
  int r = mkdirat(dirfd, name, (mode_t)mode);
  int e = errno;
  free(name);
  return done(env, r, e, "mkdirat");
}

static napi_value Renameat(napi_env env, napi_callback_info info) {
  return two_names(env, info, false);
}

static napi_value Linkat(napi_env env, napi_callback_info info) {
  return two_names(env, info, true);
}

static napi_value Unlinkat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) != napi_ok) return NULL;
  int32_t dirfd, flags;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &flags)) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) return NULL;
  int r = unlinkat(dirfd, name, flags);
  int e = errno;
  free(name);
  return done(env, r, e, "unlinkat");
}

static napi_value Symlinkat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) != napi_ok) return NULL;
  int32_t dirfd;
  if (!get_int(env, argv[1], &dirfd)) return NULL;
  char *target = c_string(env, argv[0], "target must be a Buffer or string without NUL");
  if (!target) return NULL;
  char *name = name_arg(env, argv[2]);
  if (!name) {
    free(target);
    return NULL;
  }
  int r = symlinkat(target, dirfd, name);
  int e = errno;
  free(target);
  free(name);
  return done(env, r, e, "symlinkat");
}

static napi_value Fchownat(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (args(env, info, 5, argv) != napi_ok) return NULL;
  int32_t dirfd, uid, gid, flags;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &uid) || !get_int(env, argv[3], &gid) || !get_int(env, argv[4], &flags)) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) return NULL;
  int r = fchownat(dirfd, name, (uid_t)uid, (gid_t)gid, flags);
  int e = errno;
  free(name);
  return done(env, r, e, "fchownat");
}

static napi_value Utimensat(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (args(env, info, 5, argv) != napi_ok) return NULL;
  int32_t dirfd, nsec, flags;
  int64_t sec;
  bool lossless;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[3], &nsec) || !get_int(env, argv[4], &flags)) return NULL;
  if (napi_get_value_bigint_int64(env, argv[2], &sec, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "EINVAL", "seconds must be a BigInt");
    return NULL;
  }
  struct timespec ts[2];
  ts[0].tv_sec = 0;
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_sec = (time_t)sec;
  ts[1].tv_nsec = nsec;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  int r;
  if (t == napi_null || t == napi_undefined) {
    r = futimens(dirfd, ts);
  } else {
    char *name = name_arg(env, argv[1]);
    if (!name) return NULL;
    r = utimensat(dirfd, name, ts, flags);
    int e = errno;
    free(name);
    errno = e;
  }
  if (r < 0) return throw_errno(env, errno, "utimensat");
  return NULL;
}

static napi_value FstatatMode(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) != napi_ok) return NULL;
  int32_t dirfd, flags;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &flags)) return NULL;
  char *name = name_arg(env, argv[1]);
  if (!name) return NULL;
  struct stat st;
  int r = fstatat(dirfd, name, &st, flags);
  int e = errno;
  free(name);
  if (r < 0) return throw_errno(env, e, "fstatat");
  return make_int(env, (int32_t)st.st_mode);
}

/*
 * The backup's per-entry stat: one entry of a directory (by descriptor), never following a
 * symlink, written into the caller's array so that no object is made per call. A missing
 * entry (ENOENT, ENOTDIR) is an answer, returned as its errno; other failures throw.
 */
static napi_value LstatAt(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (args(env, info, 3, argv) != napi_ok) return NULL;
  int32_t dirfd;
  if (!get_int(env, argv[0], &dirfd)) return NULL;
  napi_typedarray_type type;
  size_t count;
  void *data;
  bool is_typed = false;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (!is_typed || napi_get_typedarray_info(env, argv[2], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_bigint64_array || count < 9) {
    napi_throw_type_error(env, "EINVAL", "out must be a BigInt64Array of 9");
    return NULL;
  }
  char small[256];
  char *name = small;
  bool is_buf = false;
  napi_is_buffer(env, argv[1], &is_buf);
  void *bytes = NULL;
  size_t len = 0;
  if (is_buf) napi_get_buffer_info(env, argv[1], &bytes, &len);
  if (is_buf && len < sizeof small && memchr(bytes, 0, len) == NULL) {
    memcpy(small, bytes, len);
    small[len] = 0;
  } else {
    name = name_arg(env, argv[1]);
    if (!name) return NULL;
  }
  struct stat st;
  int r = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
  int e = errno;
  if (name != small) free(name);
  if (r < 0) {
    if (e == ENOENT || e == ENOTDIR) return make_int(env, e);
    return throw_errno(env, e, "fstatat");
  }
  int64_t *out = data, mtime, ctime;
  /* Times past what 64-bit nanoseconds hold (beyond the years 1677-2262): -1, the caller
     asks again in a way that has no such limit. */
  if (__builtin_mul_overflow((int64_t)st.st_mtim.tv_sec, 1000000000, &mtime) || __builtin_add_overflow(mtime, st.st_mtim.tv_nsec, &mtime) ||
      __builtin_mul_overflow((int64_t)st.st_ctim.tv_sec, 1000000000, &ctime) || __builtin_add_overflow(ctime, st.st_ctim.tv_nsec, &ctime))
    return make_int(env, -1);
  out[0] = (int64_t)st.st_mode;
  out[1] = (int64_t)st.st_nlink;
  out[2] = (int64_t)st.st_dev;
  out[3] = (int64_t)st.st_ino;
  out[4] = (int64_t)st.st_size;
  out[5] = mtime;
  out[6] = ctime;
  out[7] = (int64_t)st.st_uid;
  out[8] = (int64_t)st.st_gid;
  return make_int(env, 0);
}

static napi_value Fsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (args(env, info, 4, argv) != napi_ok) return NULL;
  int32_t fd, flags;
  if (!get_int(env, argv[0], &fd) || !get_int(env, argv[3], &flags)) return NULL;
  bool is_buf = false;
  napi_is_buffer(env, argv[2], &is_buf);
  if (!is_buf) {
    napi_throw_type_error(env, "EINVAL", "value must be a Buffer");
    return NULL;
  }
  void *value;
  size_t len;
  napi_get_buffer_info(env, argv[2], &value, &len);
  char *name = name_arg(env, argv[1]);
  if (!name) return NULL;
  int r = fsetxattr(fd, name, value, len, flags);
  int e = errno;
  free(name);
  return done(env, r, e, "fsetxattr");
}

void at_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "openBeneath", NULL, OpenBeneath, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mkdirat", NULL, Mkdirat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "renameat", NULL, Renameat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unlinkat", NULL, Unlinkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "linkat", NULL, Linkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "symlinkat", NULL, Symlinkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fchownat", NULL, Fchownat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "utimensat", NULL, Utimensat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fstatatMode", NULL, FstatatMode, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fsetxattr", NULL, Fsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lstatAt", NULL, LstatAt, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
