/**
 * The two archive formats `dump` writes, behind one interface: members in the order given,
 * each written whole before the next. A sink that waits for its reader (stdout, an HTTP
 * response) is what bounds memory; small pieces (headers, small files) are gathered into
 * 64 KiB writes.
 */
import { dataPadding, tarEnd, tarHeader, type TarMember } from './tar.js';
import { MemberSizeError, ZipWriter, type Sink } from './zip.js';

export type { Sink };
export type ArchiveFormat = 'tar' | 'zip';

/** What a member carries, whatever the format keeps of it. */
export interface MemberMeta {
  path: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs?: [string, Buffer][];
  aclAccess?: string;
  aclDefault?: string;
}

export interface Archive {
  dir(m: MemberMeta): Promise<void>;
  symlink(m: MemberMeta, target: Buffer): Promise<void>;
  /** A file whose bytes are in memory. */
  file(m: MemberMeta, data: Buffer): Promise<void>;
  /** A file of `size` bytes streamed from `body`, which must give exactly that many (else MemberSizeError). */
  stream(m: MemberMeta, size: number, body: AsyncIterable<Buffer>): Promise<void>;
  /** Another link to the member `target` (a path written before); false when the format has none (write a copy). */
  hardlink(m: MemberMeta, target: Buffer): Promise<boolean>;
  end(): Promise<void>;
  /** Drops what the archive holds aside (zip's spooled central directory), finished or not. */
  dispose(): void;
}

const GATHER = 64 * 1024;

/** Gathers small writes into `GATHER`-byte ones; larger ones go straight through. */
export class GatheringSink {
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes handed to the sink. */
  written = 0;

  constructor(private readonly sink: Sink) {}

  readonly write = async (b: Buffer): Promise<void> => {
    if (!b.length) return;
    this.written += b.length;
    if (b.length >= GATHER) {
      await this.flush();
      await this.sink(b);
      return;
    }
    this.parts.push(b);
    this.size += b.length;
    if (this.size >= GATHER) await this.flush();
  };

  async flush(): Promise<void> {
    if (!this.size) return;
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    await this.sink(b);
  }
}

export class TarArchive implements Archive {
  constructor(private readonly out: GatheringSink) {}

  private member(m: MemberMeta, type: TarMember['type'], size = 0, linkpath?: Buffer): TarMember {
    return { path: m.path, type, mode: m.mode, uid: m.uid, gid: m.gid, size, mtimeNs: m.mtimeNs, linkpath, xattrs: m.xattrs, aclAccess: m.aclAccess, aclDefault: m.aclDefault };
  }

  async dir(m: MemberMeta): Promise<void> {
    await this.out.write(tarHeader(this.member(m, 'dir')));
  }

  async symlink(m: MemberMeta, target: Buffer): Promise<void> {
    await this.out.write(tarHeader(this.member(m, 'symlink', 0, target)));
  }

  async file(m: MemberMeta, data: Buffer): Promise<void> {
    await this.out.write(tarHeader(this.member(m, 'file', data.length)));
    await this.out.write(data);
    await this.out.write(dataPadding(data.length));
  }

  async stream(m: MemberMeta, size: number, body: AsyncIterable<Buffer>): Promise<void> {
    await this.out.write(tarHeader(this.member(m, 'file', size)));
    let seen = 0;
    for await (const chunk of body) {
      seen += chunk.length;
      if (seen > size) throw new MemberSizeError(seen, size);
      await this.out.write(chunk);
    }
    if (seen !== size) throw new MemberSizeError(seen, size);
    await this.out.write(dataPadding(size));
  }

  async hardlink(m: MemberMeta, target: Buffer): Promise<boolean> {
    await this.out.write(tarHeader(this.member(m, 'link', 0, target)));
    return true;
  }

  async end(): Promise<void> {
    await this.out.write(tarEnd(this.out.written));
    await this.out.flush();
  }

  dispose(): void {}
}

export class ZipArchive implements Archive {
  private readonly zip: ZipWriter;

  constructor(
    private readonly out: GatheringSink,
    zip64From?: number,
  ) {
    this.zip = new ZipWriter(out.write, zip64From);
  }

  private member(m: MemberMeta, type: 'file' | 'symlink' | 'dir') {
    return { path: m.path, type, mode: m.mode, uid: m.uid, gid: m.gid, mtimeNs: m.mtimeNs };
  }

  dir(m: MemberMeta): Promise<void> {
    return this.zip.whole(this.member(m, 'dir'));
  }

  symlink(m: MemberMeta, target: Buffer): Promise<void> {
    return this.zip.whole(this.member(m, 'symlink'), target);
  }

  file(m: MemberMeta, data: Buffer): Promise<void> {
    return this.zip.whole(this.member(m, 'file'), data);
  }

  stream(m: MemberMeta, size: number, body: AsyncIterable<Buffer>): Promise<void> {
    return this.zip.stream(this.member(m, 'file'), size, body);
  }

  async hardlink(): Promise<boolean> {
    return false;
  }

  async end(): Promise<void> {
    await this.zip.end();
    await this.out.flush();
  }

  dispose(): void {
    this.zip.dispose();
  }
}

export function createArchive(format: ArchiveFormat, out: GatheringSink, opts: { zip64From?: number } = {}): Archive {
  return format === 'zip' ? new ZipArchive(out, opts.zip64From) : new TarArchive(out);
}
