/** Running backups as a user would (the CLI) against an embedded grid, and reading them back. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import Database from 'better-sqlite3';
import { walkBackup } from '../../src/browse/tree.js';
import { createUnxz } from '../../src/core/xz.js';
import { TahoeClient } from '../../src/tahoe/client.js';
import type { Metadata } from '../../src/core/child.js';
import { runCli, type CliOptions, type CliResult } from './cli.js';

export interface Project {
  dir: string;
  config: string;
  /** More -c files layered over `config`. */
  extra: string[];
  source: string;
  cache: string;
  queue: string;
}

/** A config file for backing `source` up to `url`; `extra` YAML goes in a second, layered file. */
export function project(dir: string, source: string, url: string, extra = ''): Project {
  const p: Project = { dir, source, config: join(dir, 'backup.yaml'), extra: [], cache: join(dir, 'cache.db'), queue: join(dir, 'queue.txt') };
  writeFileSync(
    p.config,
    `source: {path: '${source}', queue: {path: '${p.queue}'}, entry_cache: {path: '${p.cache}'}}\n` +
      `destination: {url: '${url}'}\nhttp: {retry: {attempts: 2, delay: [0.05]}}\n`,
  );
  if (extra) {
    p.extra.push(join(dir, 'extra.yaml'));
    writeFileSync(p.extra[0]!, extra);
  }
  return p;
}

export function configArgs(p: Project): string[] {
  return [p.config, ...p.extra].flatMap((c) => ['-c', c]);
}

export async function backup(p: Project, args: string[] = [], opts: CliOptions = {}): Promise<CliResult & { cap: string }> {
  const r = await runCli([...configArgs(p), 'backup', ...args], opts);
  return { ...r, cap: r.stdout.trim() };
}

export interface ReadNode {
  type: string;
  metadata: Metadata;
  /** Decoded contents of files (xz undone). */
  content?: Buffer;
}

/** Reads a whole backup back through the client: t=json, downloads, xz decoding. */
export async function readBack(url: string, cap: string): Promise<Map<string, ReadNode>> {
  const client = new TahoeClient({ url, retry: { attempts: 0, delays: [0] } });
  const out = new Map<string, ReadNode>();
  try {
    for await (const node of walkBackup(client, cap)) {
      const entry: ReadNode = { type: node.type, metadata: node.metadata };
      if (node.type === 'filenode') {
        const stream = await client.download(node.cap!);
        const bytes = node.metadata.enc === 'xz' ? stream.pipe(createUnxz()) : stream;
        const chunks: Buffer[] = [];
        for await (const c of bytes) chunks.push(c as Buffer);
        entry.content = Buffer.concat(chunks);
      }
      out.set(node.path.join('/'), entry);
    }
  } finally {
    await client.close();
  }
  return out;
}

/** Rows of the entry cache, read directly (as `sqlite3` would). */
export function cacheRows(path: string, sql: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

export { text };
