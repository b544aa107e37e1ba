/**
 * Output of any size in bounded memory, for `ls -R` and `diff` of trees with millions of
 * entries: lines go out in batches as they are found (waiting while stdout is slow), and a
 * JSON object of lists is spooled to private temporary files and copied out at the end.
 */
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const BATCH = 64 * 1024;

/** Lines written `BATCH` characters at a time through `write` (which waits for the pipe). */
export class LineBatch {
  private text = '';

  constructor(private readonly write: (text: string) => Promise<void>) {}

  add(line: string): Promise<void> {
    return this.append(`${line}\n`);
  }

  /** Text as it is (no newline added). */
  async append(text: string): Promise<void> {
    this.text += text;
    if (this.text.length >= BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.text) return;
    const text = this.text;
    this.text = '';
    await this.write(text);
  }
}

/** Items of a JSON array, as `JSON.stringify(array, null, 2)` lays them out at `indent`. */
export function jsonItem(value: unknown, indent: string): string {
  return indent + JSON.stringify(value, null, 2).replace(/\n/g, `\n${indent}`);
}

interface Spooled {
  fd: number;
  path: string;
  count: number;
  pending: string;
}

/**
 * An object whose values are lists, written out exactly as `JSON.stringify(obj, null, 2)`
 * would, without holding the lists: each is spooled to a file in a private directory (0700,
 * files 0600: diff paths are the user's file names) as items arrive.
 */
export class JsonLists {
  private constructor(
    private readonly dir: string,
    private readonly lists: Map<string, Spooled>,
  ) {}

  static create(names: string[]): JsonLists {
    const dir = mkdtempSync(join(tmpdir(), 'lafs-backup-'));
    const lists = new Map<string, Spooled>();
    for (const name of names) {
      const path = join(dir, name);
      lists.set(name, { fd: openSync(path, 'wx', 0o600), path, count: 0, pending: '' });
    }
    return new JsonLists(dir, lists);
  }

  add(name: string, value: unknown): void {
    const l = this.lists.get(name)!;
    l.pending += `${l.count++ ? ',\n' : ''}${jsonItem(value, '    ')}`;
    if (l.pending.length >= BATCH) this.spill(l);
  }

  private spill(l: Spooled): void {
    if (l.pending) writeSync(l.fd, l.pending);
    l.pending = '';
  }

  /** Writes the whole object to `out`. */
  async writeTo(out: NodeJS.WritableStream): Promise<void> {
    const write = (text: string) => new Promise<void>((ok) => (out.write(text) ? ok() : out.once('drain', () => ok())));
    await write('{\n');
    const entries = [...this.lists];
    for (const [i, [name, l]] of entries.entries()) {
      this.spill(l);
      await write(`  ${JSON.stringify(name)}: [`);
      if (l.count) {
        await write('\n');
        await pipeline(createReadStream(l.path), out, { end: false });
        await write('\n  ]');
      } else await write(']');
      await write(i < entries.length - 1 ? ',\n' : '\n');
    }
    await write('}\n');
  }

  /** Deletes the spool files. */
  remove(): void {
    for (const l of this.lists.values()) closeSync(l.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A JSON array written as items arrive, laid out as `JSON.stringify(array, null, 2)` would. */
export class JsonArrayOut {
  private count = 0;
  private readonly batch: LineBatch;

  constructor(write: (text: string) => Promise<void>) {
    this.batch = new LineBatch(write);
  }

  add(value: unknown): Promise<void> {
    return this.batch.append(`${this.count++ ? ',' : '['}\n${jsonItem(value, '  ')}`);
  }

  async end(): Promise<void> {
    await this.batch.add(this.count ? '\n]' : '[]');
    await this.batch.flush();
  }
}
