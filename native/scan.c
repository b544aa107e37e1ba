/*
 * One directory of phase 1's walk in one call (why: the walk's floor is the system calls, and a
 * call from JavaScript per entry per question cost several times their price):
 *
 *   scanDir(path, withXattrs, maxEntries, unchangedBefore) -> ArrayBuffer | errno | -1
 *
 * opens `path` (O_DIRECTORY | O_NOFOLLOW: a directory swapped for a symlink since its lstat is
 * not followed), reads its names, sorts them by their bytes, and for each one takes
 * fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) and, when `withXattrs`, llistxattr of "path/name"
 * (not for symlinks: no ACL or capability is kept on one), except for entries whose ctime is
 * older than `unchangedBefore` (a BigInt of ns, 0n for none): the caller knows those had none
 * when it last looked and that nothing about them changed since (an xattr set changes the
 * ctime), so they are given as having none. It returns the errno as a number
 * when the directory cannot be opened or read.
 *
 * Bounded: for a directory of more than `maxEntries` names, or whose records would take more
 * than MAX_BYTES (long attribute lists), it returns -1 and nothing else (the walk lists that
 * one the slow way, a name at a time, so a huge directory costs no records).
 * The result:
 *
 *   int64 count, int64 clean (1: every entry was stat'ed, and every one but a symlink had its
 *   attribute names listed or known to be none, and none of them is an ACL or a capability),
 *   then `count` records, each 8-byte aligned:
 *     int64[9]  mode, nlink, dev, ino, size, mtime ns, ctime ns, uid, gid
 *     int32     name length
 *     int32     stat: 0 taken; the errno of fstatat; -1 a time beyond 64-bit ns
 *     int32     attribute names: their length in bytes (NUL-separated, as llistxattr gives
 *               them); 0 none; -errno when listing failed; INT32_MIN when not listed
 *               (not asked, or a symlink)
 *     int32     d_type
 *     the name's bytes, then the attribute names' bytes, zero-padded to 8
 *
 * Self-contained (util.c's argument and errno helpers only), as xattr.c and at.c are.
 */
#define _GNU_SOURCE
#include "addon.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define HEAD 88
#define NOT_LISTED INT32_MIN
#define MAX_BYTES (32u << 20)

struct name {
  char *s;
  size_t len;
  unsigned char type;
};

struct names {
  struct name *v;
  size_t n, cap;
  /* The names' bytes, one arena: no allocation per entry. */
  char *arena;
  size_t used, size;
};

static void names_free(struct names *ns) {
  free(ns->v);
  free(ns->arena);
}

static int by_bytes(const void *a, const void *b) {
  /* strcmp compares as unsigned char: the byte order Buffer.compare gives. */
  return strcmp(((const struct name *)a)->s, ((const struct name *)b)->s);
}

/* The directory's names, sorted; 0 or an errno. The arena's pointers are fixed up after growth.
 * It stops (unsorted) once there are more than `max`: the caller lists no such directory. */
static int read_names(DIR *d, struct names *ns, size_t max) {
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    const char *s = e->d_name;
    if (s[0] == '.' && (s[1] == 0 || (s[1] == '.' && s[2] == 0))) continue;
    if (ns->n >= max) {
      ns->n = max + 1;
      return 0;
    }
    size_t len = strlen(s);
    if (ns->n == ns->cap) {
      size_t cap = ns->cap ? ns->cap * 2 : 64;
      struct name *v = realloc(ns->v, cap * sizeof *v);
      if (!v) return ENOMEM;
      ns->v = v;
      ns->cap = cap;
    }
    if (ns->used + len + 1 > ns->size) {
      size_t size = ns->size ? ns->size * 2 : 4096;
      while (size < ns->used + len + 1) size *= 2;
      char *arena = realloc(ns->arena, size);
      if (!arena) return ENOMEM;
      ns->arena = arena;
      ns->size = size;
    }
    memcpy(ns->arena + ns->used, s, len + 1);
    /* An offset for now (the arena may move); made a pointer once all are read. */
    ns->v[ns->n].s = (char *)(uintptr_t)ns->used;
    ns->v[ns->n].len = len;
    ns->v[ns->n].type = e->d_type;
    ns->n++;
    ns->used += len + 1;
    errno = 0;
  }
  if (errno) return errno;
  for (size_t i = 0; i < ns->n; i++) ns->v[i].s = ns->arena + (uintptr_t)ns->v[i].s;
  qsort(ns->v, ns->n, sizeof *ns->v, by_bytes);
  return 0;
}

/* A time as int64 nanoseconds; false when it does not fit. */
static bool ns_of(struct timespec t, int64_t *out) {
  int64_t s = (int64_t)t.tv_sec;
  if (s > INT64_MAX / 1000000000 - 1 || s < INT64_MIN / 1000000000 + 1) return false;
  *out = s * 1000000000 + t.tv_nsec;
  return true;
}

struct out {
  char *buf;
  size_t used, size;
};

static bool reserve(struct out *o, size_t more) {
  if (o->used + more <= o->size) return true;
  size_t size = o->size ? o->size : 4096;
  while (size < o->used + more) size *= 2;
  char *buf = realloc(o->buf, size);
  if (!buf) return false;
  o->buf = buf;
  o->size = size;
  return true;
}

/* The attribute names of `path` into `o` at its end; their length, or -errno. */
static int32_t list_attrs(const char *path, struct out *o) {
  /* Most entries have none: one call into the space already there, and more only on ERANGE. */
  if (!reserve(o, 256)) return -ENOMEM;
  ssize_t n = llistxattr(path, o->buf + o->used, o->size - o->used);
  while (n < 0 && errno == ERANGE) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) break;
    if (!reserve(o, (size_t)n + 1)) return -ENOMEM;
    n = llistxattr(path, o->buf + o->used, o->size - o->used);
  }
  if (n < 0) return -errno;
  return (int32_t)n;
}

/* Whether a list of attribute names (NUL-separated) holds an ACL or a file capability. */
static bool acl_or_cap(const char *list, size_t n) {
  for (size_t i = 0; i < n;) {
    const char *s = list + i;
    size_t len = strnlen(s, n - i);
    if ((len == 23 && memcmp(s, "system.posix_acl_access", 23) == 0) || (len == 24 && memcmp(s, "system.posix_acl_default", 24) == 0) ||
        (len == 19 && memcmp(s, "security.capability", 19) == 0))
      return true;
    i += len + 1;
  }
  return false;
}

/* One record: the name's stat and (when asked) attribute names, appended to `o`; false on
 * ENOMEM. `*clean` is cleared unless the entry is clean (see the layout above). */
static bool record(struct out *o, int dfd, const char *dir, size_t dirlen, const struct name *nm, bool xattrs, int64_t unchanged_before, char **path, size_t *pathsize, bool *clean) {
  size_t at = o->used;
  if (!reserve(o, HEAD + nm->len + 8)) return false;
  int64_t f[9] = { 0 };
  int32_t st_res, attrs = NOT_LISTED;
  struct stat st;
  if (fstatat(dfd, nm->s, &st, AT_SYMLINK_NOFOLLOW) != 0) st_res = errno;
  else {
    st_res = 0;
    f[0] = st.st_mode;
    f[1] = (int64_t)st.st_nlink;
    f[2] = (int64_t)st.st_dev;
    f[3] = (int64_t)st.st_ino;
    f[4] = (int64_t)st.st_size;
    if (!ns_of(st.st_mtim, &f[5]) || !ns_of(st.st_ctim, &f[6])) st_res = -1;
    f[7] = st.st_uid;
    f[8] = st.st_gid;
  }
  memcpy(o->buf + at, f, sizeof f);
  int32_t name_len = (int32_t)nm->len, type = nm->type;
  memcpy(o->buf + at + 72, &name_len, 4);
  memcpy(o->buf + at + 76, &st_res, 4);
  memcpy(o->buf + at + 84, &type, 4);
  memcpy(o->buf + at + HEAD, nm->s, nm->len);
  o->used = at + HEAD + nm->len;
  if (xattrs && st_res == 0 && !S_ISLNK(st.st_mode) && f[6] < unchanged_before) attrs = 0;
  else if (xattrs && st_res == 0 && !S_ISLNK(st.st_mode)) {
    size_t need = dirlen + 1 + nm->len + 1;
    if (need > *pathsize) {
      char *p = realloc(*path, need * 2);
      if (!p) return false;
      *path = p;
      *pathsize = need * 2;
    }
    memcpy(*path, dir, dirlen);
    (*path)[dirlen] = '/';
    memcpy(*path + dirlen + 1, nm->s, nm->len + 1);
    attrs = list_attrs(*path, o);
    if (attrs == -ENOMEM) return false;
    if (attrs > 0 && acl_or_cap(o->buf + o->used, (size_t)attrs)) *clean = false;
    if (attrs > 0) o->used += (size_t)attrs;
  }
  if (st_res != 0 || (!S_ISLNK(st.st_mode) && attrs < 0)) *clean = false;
  memcpy(o->buf + at + 80, &attrs, 4);
  size_t pad = (8 - (o->used & 7)) & 7;
  if (!reserve(o, pad)) return false;
  memset(o->buf + o->used, 0, pad);
  o->used += pad;
  return true;
}

static napi_value ScanDir(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (args(env, info, 4, argv) != napi_ok) return NULL;
  bool xattrs = false, lossless = true;
  int64_t max = 0, unchanged_before = 0;
  bool ok = napi_get_value_bool(env, argv[1], &xattrs) == napi_ok && napi_get_value_int64(env, argv[2], &max) == napi_ok;
  ok = ok && napi_get_value_bigint_int64(env, argv[3], &unchanged_before, &lossless) == napi_ok && lossless;
  if (!ok) {
    napi_throw_type_error(env, "EINVAL", "scanDir(path, withXattrs, maxEntries, unchangedBefore)");
    return NULL;
  }
  char *dir = c_string(env, argv[0], "path must be a Buffer or string without NUL");
  if (!dir) return NULL;
  napi_value result;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    int e = errno;
    if (fd >= 0) close(fd);
    free(dir);
    napi_create_int32(env, e, &result);
    return result;
  }
  struct names ns = { 0 };
  int e = read_names(d, &ns, max < 0 ? 0 : (size_t)max);
  struct out o = { 0 };
  char *path = NULL;
  size_t pathsize = 0;
  bool too_many = !e && (int64_t)ns.n > max;
  bool clean = xattrs;
  if (!e && !too_many && !reserve(&o, 16)) e = ENOMEM;
  if (!e && !too_many) {
    int64_t count = (int64_t)ns.n;
    memcpy(o.buf, &count, 8);
    o.used = 16;
    size_t dirlen = strlen(dir);
    for (size_t i = 0; i < ns.n && !e && !too_many; i++) {
      if (!record(&o, dirfd(d), dir, dirlen, &ns.v[i], xattrs, unchanged_before, &path, &pathsize, &clean)) e = ENOMEM;
      else if (o.used > MAX_BYTES) too_many = true;
    }
    int64_t flag = clean ? 1 : 0;
    memcpy(o.buf + 8, &flag, 8);
  }
  closedir(d);
  names_free(&ns);
  free(path);
  free(dir);
  if (e || too_many) {
    free(o.buf);
    napi_create_int32(env, too_many ? -1 : e, &result);
    return result;
  }
  void *data;
  if (napi_create_arraybuffer(env, o.used, &data, &result) != napi_ok) {
    free(o.buf);
    return NULL;
  }
  memcpy(data, o.buf, o.used);
  free(o.buf);
  return result;
}

void scan_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "scanDir", NULL, ScanDir, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
