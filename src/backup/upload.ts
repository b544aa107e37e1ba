/**
 * Sending one file's contents: read (small files whole, larger ones streamed by position),
 * looked up by SHA-256 in the content index, compressed when a sample says it pays, and PUT.
 * Files are opened as open-source.ts says (never blocking, checked, bounded). A failed read is a
 * SourceError; the client's errors are TahoeErrors.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import type { StoredAs } from '../cache/db.js';
import { sampleBlocks, sampleOf, samplePays, type Choice, type CompressionPolicy } from '../core/compression.js';
import type { Pool } from '../core/pool.js';
import { passed } from '../core/scavenge.js';
import { createXz, type XzSettings } from '../core/xz.js';
import { fromSource, fromSourceAsync, sourceError } from '../errors.js';
import type { ContentsInFlight, UploadedContents } from './contents.js';
import type { EventSink, Stored } from './events.js';
import { changedSince, openSource, openSourceSync, type Opened } from './open-source.js';
import type { ContentIndex, Uploader } from './ports.js';
import type { TokenBucket } from '../core/ratelimit.js';
import type { EntryStat } from './source-stat.js';

/** The encoding this run stores compressible files with: the policy, the xz settings, their id. */
export interface XzChoice {
  policy: CompressionPolicy;
  settings: XzSettings;
  /** The encoding id in cache keys and rows ('xz:…'). */
  id: string;
}

/** What sending contents needs: all of it the file stage's. */
export interface SendDeps {
  /** The source directory, absolute (files are read only beneath it). */
  root: Buffer;
  client: Uploader;
  /** Undefined with deduplication disabled: contents are neither looked up nor shared. */
  cache?: ContentIndex;
  xz: XzChoice;
  /** Files being compressed: one per core by default, apart from the uploads. */
  encoders: Pool;
  contents: ContentsInFlight;
  /** Larger files are hashed before upload to look their contents up. */
  prehash: boolean;
  bytes?: TokenBucket;
  emit: EventSink;
}

/**
 * Files up to this size are read in one go and sent with a known length: a couple of stream
 * chunks anyway, and a few synchronous calls cost far less than a stream pipeline and thread
 * pool round trips per file. Memory stays bounded: concurrency × SMALL_FILE.
 */
export const SMALL_FILE = 256 * 1024;

/** Stored raw because of the name or size (or xz is off): what the summary calls it. */
function rawBecause(choice: Choice): Stored {
  return choice === 'by-name' ? 'raw-by-name' : choice === 'by-size' ? 'raw-by-size' : choice === 'off' ? 'raw' : 'raw-by-content';
}

/**
 * The file stage's sending of contents. Every result is an UploadedContents; `how: 'known'`
 * when nothing was uploaded (the contents were found). Bytes read, sent and compressed are
 * reported as events as they happen.
 */
export class Sender {
  constructor(private readonly d: SendDeps) {}

  /** Uploads the contents of the file `st` describes (its size chooses the way it is read). */
  send(abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
    return st.size <= BigInt(SMALL_FILE) ? this.small(abs, shown, st, choice) : this.large(abs, shown, st, choice);
  }

  /**
   * The SHA-256 of a file's contents (the re-hash of a file whose ctime alone moved); undefined
   * when the file opened is not the one stat'ed any more (then it is uploaded as it is read).
   */
  async hash(abs: Buffer, shown: string, st: EntryStat): Promise<Buffer | undefined> {
    const { fh, opened } = await openSource(this.d.root, abs, shown, st);
    try {
      if (opened.changed) return undefined;
      return (await this.hashOpen(fh, shown, opened.limit)).sha256;
    } finally {
      await fh.close();
    }
  }

  /**
   * Contents already stored (the content index of the cache): the cap and how it was stored,
   * preferring the encoding this file would get. No request.
   */
  private known(sha256: Buffer, choice: Choice): { cap: string; enc: StoredAs } | undefined {
    return this.d.cache?.knownContent(sha256, choice === 'contents' ? this.d.xz.id : 'raw');
  }

  /** Reads a small file whole (up to its size when stat'ed and opened), noting whether it changed. */
  private readSmall(abs: Buffer, shown: string, st: EntryStat): { data: Buffer; changed: boolean } {
    return fromSource(shown, () => {
      const { fd, opened } = openSourceSync(this.d.root, abs, shown, st);
      try {
        const data = Buffer.allocUnsafe(opened.limit);
        let read = 0;
        for (let n; read < data.length && (n = readSync(fd, data, read, data.length - read, read)) > 0; ) read += n;
        const changed = opened.changed || read !== opened.limit || changedSince(opened, fstatSync(fd, { bigint: true }));
        return { data: data.subarray(0, read), changed };
      } finally {
        closeSync(fd);
      }
    });
  }

  /** A small file's bytes: found by contents, compressed when that pays, or raw. */
  private async small(abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
    const d = this.d;
    const { data, changed } = this.readSmall(abs, shown, st);
    const sha256 = createHash('sha256').update(data).digest();
    const size = data.length;
    d.emit({ type: 'read', bytes: size, upload: false });
    const hit = changed ? undefined : this.known(sha256, choice);
    if (hit) return { ...hit, sha256, changed, how: 'known', size, streamed: 0 };
    const send = async (): Promise<UploadedContents> => {
      let body = data;
      let how = rawBecause(choice);
      if (choice === 'contents' && samplePays(sampleOf(data), d.xz.policy.minSaving)) {
        // A small file is compressed whole and stored raw when xz does not make it smaller.
        const xz = await d.encoders.run(() => xzBuffer(data, d.xz.settings));
        if (xz.length < data.length || d.xz.policy.minSaving === null) {
          body = xz;
          how = 'xz';
          d.emit({ type: 'compressed', in: size, out: xz.length });
        }
      }
      d.emit({ type: 'sent', bytes: body.length });
      const bytes = d.bytes;
      const cap = await d.client.putFile(() => (bytes ? Readable.from([body]).pipe(bytes.meter()) : body));
      return { cap, sha256, changed, enc: how === 'xz' ? d.xz.id : 'raw', how, size, streamed: 0 };
    };
    return changed || !d.cache ? send() : d.contents.once(sha256, send);
  }

  /** The SHA-256 of an open file's first `limit` bytes (the pre-hash, the re-hash), and how many there were. */
  private async hashOpen(fh: FileHandle, shown: string, limit: number): Promise<{ sha256: Buffer; bytes: number }> {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(limit, 1)));
    let pos = 0;
    while (pos < limit) {
      const { bytesRead } = await fromSourceAsync(shown, () => fh.read(buf, 0, Math.min(buf.length, limit - pos), pos));
      if (!bytesRead) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      this.d.emit({ type: 'read', bytes: bytesRead, upload: false });
    }
    return { sha256: h.digest(), bytes: pos };
  }

  /** Whether the sample of an open file (its first and middle blocks) shrinks enough to compress. */
  private async pays(fh: FileHandle, shown: string, size: number): Promise<boolean> {
    const minSaving = this.d.xz.policy.minSaving;
    if (minSaving === null) return true;
    // Block by block: the first that does not shrink ends the test (and the reading).
    for (const [at, len] of sampleBlocks(size)) {
      const buf = Buffer.allocUnsafe(len);
      const { bytesRead } = await fromSourceAsync(shown, () => fh.read(buf, 0, len, at));
      if (!samplePays([buf.subarray(0, bytesRead)], minSaving)) return false;
    }
    return true;
  }

  /**
   * Streams a file to `PUT /uri`: plaintext hashed (and reported as read) in one pass-through,
   * then xz (maybe) and the byte rate limit. Chunks of 1 MiB keep the per-chunk cost of each
   * stage low. Every attempt reads the file again from its first byte.
   */
  private async stream(fh: FileHandle, shown: string, opened: Opened, compress: boolean): Promise<{ cap: string; sha256: Buffer; changed: boolean; read: number }> {
    const d = this.d;
    let hash = createHash('sha256');
    let read = 0;
    let sent = 0;
    let readError: unknown;
    const body = () => {
      // A retry reads the file again from its first byte: what the last attempt read is taken back.
      if (read) d.emit({ type: 'retry', bytes: read });
      hash = createHash('sha256');
      read = 0;
      sent = 0;
      const stages: NodeJS.ReadWriteStream[] = [
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            read += chunk.length;
            d.emit({ type: 'read', bytes: chunk.length, upload: true });
            cb(null, chunk);
          },
        }),
      ];
      if (compress) {
        stages.push(createXz(d.xz.settings));
        stages.push(
          new Transform({
            transform(chunk: Buffer, _enc, cb) {
              sent += chunk.length;
              cb(null, chunk);
            },
          }),
        );
      }
      if (d.bytes) stages.push(d.bytes.meter());
      const source = fileBytes(fh, shown, opened.limit, (e) => (readError ??= e));
      return pipeline([source, ...stages], () => {}) as unknown as Readable;
    };
    let cap: string;
    try {
      cap = await d.client.putFile(body);
    } catch (e) {
      // The request failed because the file could not be read: that is the file's failure.
      throw readError ?? e;
    }
    const after = await fromSourceAsync(shown, () => fh.stat({ bigint: true }));
    if (!compress) sent = read;
    d.emit({ type: 'sent', bytes: sent });
    if (compress) d.emit({ type: 'compressed', in: read, out: sent });
    const changed = opened.changed || read !== opened.limit || changedSince(opened, after);
    return { cap, sha256: hash.digest(), changed, read };
  }

  /**
   * A larger file: hashed first when the cache can look its contents up (a local read costs far
   * less than an upload), then a sample decides the encoding, then it is streamed up.
   */
  private async large(abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
    const d = this.d;
    const { fh, opened } = await openSource(d.root, abs, shown, st);
    try {
      const size = opened.limit;
      let prehash: Buffer | undefined;
      // A file that is not what was stat'ed any more goes up as read, looked up by nothing.
      const lookUp = d.cache !== undefined && d.prehash && !opened.changed;
      // Same-size files of this run going up unhashed that may be its twins (same first block),
      // until none came in meanwhile: from the last look to acting on it, nothing awaits.
      const search = lookUp ? d.contents.search(fh, shown, size) : undefined;
      for (let them = search?.unseen() ?? []; them.length; them = search!.unseen()) await search!.compare(them);
      if (search && (search.twins.length || d.cache!.mayKnowSize(size))) {
        const hashed = await this.hashOpen(fh, shown, size);
        prehash = hashed.sha256;
        const hit = (await search.twinOf(prehash)) ?? this.known(prehash, choice);
        if (hit) {
          const changed = changedSince(opened, await fromSourceAsync(shown, () => fh.stat({ bigint: true })));
          return { cap: hit.cap, enc: hit.enc, sha256: prehash, changed, how: 'known', size: hashed.bytes, streamed: 0 };
        }
      }
      const send = async (): Promise<UploadedContents> => {
        const compress = choice === 'contents' && (await this.pays(fh, shown, size));
        const up = compress ? await d.encoders.run(() => this.stream(fh, shown, opened, true)) : await this.stream(fh, shown, opened, false);
        // Contents that differ from the pre-hash changed between the two reads.
        const changed = up.changed || (prehash !== undefined && !prehash.equals(up.sha256));
        return { cap: up.cap, sha256: up.sha256, changed, enc: compress ? d.xz.id : 'raw', how: compress ? 'xz' : rawBecause(choice), size: up.read, streamed: up.read };
      };
      if (prehash) return await d.contents.once(prehash, send);
      return search ? await d.contents.unhashed(fh, size, send) : await send();
    } finally {
      await fh.close();
    }
  }
}

async function xzBuffer(data: Buffer, settings: XzSettings): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([data]).pipe(createXz(settings))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The file's first `limit` bytes, by explicit position (no shared file offset): each attempt of
 * an upload gets a fresh one and reads from the first byte. A failed read is a SourceError.
 */
function fileBytes(fh: FileHandle, shown: string, limit: number, onError: (e: unknown) => void): Readable {
  let pos = 0;
  return new Readable({
    highWaterMark: 1 << 20,
    read(size) {
      if (pos >= limit) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1 << 20), limit - pos));
      fh.read(buf, 0, buf.length, pos).then(
        ({ bytesRead }) => {
          pos += bytesRead;
          passed(bytesRead);
          this.push(bytesRead ? buf.subarray(0, bytesRead) : null);
        },
        (e: unknown) => {
          const err = sourceError(shown, e);
          onError(err);
          this.destroy(err as Error);
        },
      );
    },
  });
}
