/**
 * What the embedded grid holds: immutable objects (files and dirnodes) by storage index,
 * with the share placement of a k-of-N encoding over simulated storage servers and their
 * leases; and mutable directories. In memory, or under a directory (`--dir`) where blobs are
 * files and the rest is `state.json`, rewritten atomically shortly after each change.
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chkIds, newSecret, serverId } from './ids.js';

export const LEASE_SECONDS = 31 * 24 * 3600;

export interface StoredObject {
  si: string;
  kind: 'file' | 'dir';
  size: number;
  /** Share numbers held by each server (index = server). */
  placement: number[][];
  leaseExpires: number;
  leaseRenewals: number;
}

export interface MutableChild {
  ro?: string;
  rw?: string;
  metadata: Record<string, unknown>;
}

export interface MutableDir {
  writekey: string;
  readkey: string;
  si: string;
  fingerprint: string;
  seq: number;
  children: Record<string, MutableChild>;
  placement: number[][];
  leaseExpires: number;
  leaseRenewals: number;
}

export interface GridStats {
  requests: number;
  put_uri: number;
  mkdir_immutable: number;
  mkdir: number;
  link: number;
  unlink: number;
  get_json: number;
  download: number;
  deep_check: number;
  manifest: number;
  check: number;
  /** Body bytes received by `PUT /uri`. */
  bytes_uploaded: number;
}

export function emptyStats(): GridStats {
  return {
    requests: 0,
    put_uri: 0,
    mkdir_immutable: 0,
    mkdir: 0,
    link: 0,
    unlink: 0,
    get_json: 0,
    download: 0,
    deep_check: 0,
    manifest: 0,
    check: 0,
    bytes_uploaded: 0,
  };
}

export interface GridShape {
  needed: number;
  total: number;
  happy: number;
}

interface Persisted {
  version: 1;
  secret: string;
  servers: boolean[];
  objects: StoredObject[];
  mutables: MutableDir[];
}

export class GridState {
  readonly secret: Buffer;
  readonly shape: GridShape;
  /** Which simulated storage servers are up. */
  readonly serversUp: boolean[];
  readonly serverIds: string[];
  readonly objects = new Map<string, StoredObject>();
  readonly mutables = new Map<string, MutableDir>();
  private readonly blobs = new Map<string, Buffer>();
  stats: GridStats = emptyStats();
  /** 'upload' (cap, bytes) after each PUT /uri; 'upload-start' when one begins. For tests. */
  readonly events = new EventEmitter();
  private flushTimer?: NodeJS.Timeout;

  constructor(
    readonly dir: string | undefined,
    shape: GridShape = { needed: 2, total: 4, happy: 3 },
  ) {
    this.shape = shape;
    let persisted: Persisted | undefined;
    if (dir) {
      mkdirSync(join(dir, 'blobs'), { recursive: true, mode: 0o700 });
      mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o700 });
      const file = join(dir, 'state.json');
      if (existsSync(file)) persisted = JSON.parse(readFileSync(file, 'utf8')) as Persisted;
    }
    this.secret = persisted ? Buffer.from(persisted.secret, 'base64') : newSecret();
    this.serversUp = persisted?.servers ?? Array.from({ length: shape.total }, () => true);
    this.serverIds = this.serversUp.map((_, i) => serverId(this.secret, i));
    for (const o of persisted?.objects ?? []) this.objects.set(o.si, o);
    for (const m of persisted?.mutables ?? []) this.mutables.set(m.si, m);
    if (dir && !persisted) this.flushNow();
  }

  // ---- blobs --------------------------------------------------------------------------

  tmpPath(name: string): string | undefined {
    return this.dir ? join(this.dir, 'tmp', name) : undefined;
  }

  blobPath(si: string): string {
    return join(this.dir!, 'blobs', si.slice(0, 2), si);
  }

  /**
   * Stores a blob: in memory without --dir; under --dir always on disk (bytes are written to a
   * temporary file first), so files and directories alike survive a restart.
   */
  putBlob(si: string, data: Buffer | { tmpFile: string }): void {
    if (!this.dir) {
      if (!Buffer.isBuffer(data)) throw new Error('a temporary file without --dir');
      this.blobs.set(si, data);
      return;
    }
    let tmpFile: string;
    if (Buffer.isBuffer(data)) {
      tmpFile = join(this.dir, 'tmp', `${si}.${process.pid}.${Date.now()}`);
      writeFileSync(tmpFile, data, { mode: 0o600 });
    } else tmpFile = data.tmpFile;
    mkdirSync(join(this.dir, 'blobs', si.slice(0, 2)), { recursive: true, mode: 0o700 });
    renameSync(tmpFile, this.blobPath(si));
  }

  /**
   * Whether the object's bytes are there and whole (under --dir a blob file can be removed or
   * damaged behind the grid's back). A missing or damaged blob means no share can be read:
   * check reports it unhealthy and reads fail like a real gateway's, never a crash.
   */
  /**
   * `verify=true`: the bytes are read and hashed again; a blob whose contents no longer give
   * its storage index (damaged in place, same size) has no good share.
   */
  verified(si: string, size: number, domain: 'file' | 'dir'): boolean {
    if (!this.intact(si, size)) return false;
    const digest = createHash('sha256').update(this.readBlob(si)).digest();
    return chkIds(this.secret, domain, digest).si === si;
  }

  intact(si: string, size: number): boolean {
    const mem = this.blobs.get(si);
    if (mem) return mem.length === size;
    if (!this.dir) return false;
    try {
      return statSync(this.blobPath(si)).size === size;
    } catch {
      return false;
    }
  }

  readBlob(si: string): Buffer {
    const mem = this.blobs.get(si);
    if (mem) return mem;
    if (!this.dir) throw new Error('missing blob');
    return readFileSync(this.blobPath(si));
  }

  streamBlob(si: string, start?: number, end?: number): Readable {
    const mem = this.blobs.get(si);
    if (mem) return ReadableStream.from([mem.subarray(start ?? 0, end === undefined ? undefined : end + 1)]);
    return createReadStream(this.blobPath(si), { start, end });
  }

  // ---- shares -------------------------------------------------------------------------

  /** Places shares 0..N-1 over the live servers, round robin; undefined if fewer than `happy` are up. */
  freshPlacement(): number[][] | undefined {
    const live = this.liveServers();
    if (live.length < this.shape.happy) return undefined;
    const placement: number[][] = this.serversUp.map(() => []);
    for (let sh = 0; sh < this.shape.total; sh++) placement[live[sh % live.length]!]!.push(sh);
    return placement;
  }

  liveServers(): number[] {
    return this.serversUp.flatMap((up, i) => (up ? [i] : []));
  }

  /** Adds missing shares back on live servers (fewest shares first). */
  repairPlacement(placement: number[][]): void {
    const live = this.liveServers();
    if (!live.length) return;
    const good = new Set(live.flatMap((s) => placement[s]!));
    for (let sh = 0; sh < this.shape.total; sh++) {
      if (good.has(sh)) continue;
      const target = [...live].sort((a, b) => placement[a]!.length - placement[b]!.length || a - b)[0]!;
      placement[target]!.push(sh);
      placement[target]!.sort((a, b) => a - b);
    }
  }

  // ---- persistence ----------------------------------------------------------------------

  changed(): void {
    if (!this.dir || this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flushNow(), 100);
    this.flushTimer.unref();
  }

  flushNow(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dir) return;
    const data: Persisted = {
      version: 1,
      secret: this.secret.toString('base64'),
      servers: this.serversUp,
      objects: [...this.objects.values()],
      mutables: [...this.mutables.values()],
    };
    const file = join(this.dir, 'state.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(data), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
