/** Real trees on disk for tests: temporary directories, file builders, unprivileged runs. */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];
afterAll(() => {
  for (const d of made) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

/** A fresh directory (mode 0755 so an unprivileged test user can reach into it), removed after the file's tests. */
export function tempDir(prefix = 'lb-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  made.push(d);
  return d;
}

export type Spec = { [name: string]: string | Buffer | Spec | { symlink: string } };

/** Creates `spec` under `root`; file mtimes are set an hour back so the cache may trust them. */
export function makeTree(root: string, spec: Spec): void {
  mkdirSync(root, { recursive: true });
  const old = new Date(Date.now() - 3600_000);
  for (const [name, v] of Object.entries(spec)) {
    const p = join(root, name);
    if (typeof v === 'string' || Buffer.isBuffer(v)) {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, v);
      utimesSync(p, old, old);
    } else if ('symlink' in v && typeof v.symlink === 'string') {
      symlinkSync(v.symlink, p);
    } else makeTree(p, v as Spec);
  }
}

/** Same, for names given as raw bytes (invalid UTF-8, newlines…). */
export function writeRaw(root: string, name: Buffer, content: string | Buffer): Buffer {
  const p = Buffer.concat([Buffer.from(`${root}/`), name]);
  writeFileSync(p, content);
  const old = new Date(Date.now() - 3600_000);
  utimesSync(p, old, old);
  return p;
}

export const isRoot = process.getuid?.() === 0;

/** uid/gid to run a child as, so permission bits bite even when the suite runs as root. */
export function unprivileged(): { uid?: number; gid?: number } {
  return isRoot ? { uid: 65534, gid: 65534 } : {};
}

/** Lets the unprivileged user write into `dir`. */
export function handToUnprivileged(dir: string): void {
  if (isRoot) chownSync(dir, 65534, 65534);
}
