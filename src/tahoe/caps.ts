/**
 * Capabilities: parsing, classification and validation. A cap is a secret: its redaction
 * (`redact`, `scrubCaps`) is in core/redact.ts, below the log that uses it.
 */
import { redact } from '../core/redact.js';
import { UsageError } from '../errors.js';

export type CapKind =
  | 'LIT'
  | 'CHK'
  | 'CHK-Verifier'
  | 'DIR2-LIT'
  | 'DIR2-CHK'
  | 'DIR2-CHK-Verifier'
  | 'DIR2'
  | 'DIR2-RO'
  | 'DIR2-Verifier'
  | 'SSK'
  | 'SSK-RO'
  | 'SSK-Verifier'
  | 'MDMF'
  | 'MDMF-RO'
  | 'MDMF-Verifier'
  | 'DIR2-MDMF'
  | 'DIR2-MDMF-RO'
  | 'DIR2-MDMF-Verifier';

export interface Cap {
  readonly text: string;
  readonly kind: CapKind;
  /** A directory (any DIR2 flavour). */
  readonly isDir: boolean;
  /** Its target can never change (LIT, CHK and their dir forms). */
  readonly isImmutable: boolean;
  /** It grants write access (DIR2, SSK, MDMF write caps). */
  readonly isWrite: boolean;
  /** A verify cap: can check, cannot read. */
  readonly isVerifier: boolean;
  /** CHK forms: the size in bytes recorded in the cap; LIT forms: the inline data length. */
  readonly size?: number;
  readonly needed?: number;
  readonly total?: number;
}

const B = '[a-z2-7]';
const KEY = `${B}{26}`;
const HASH = `${B}{52}`;
const CHK_TAIL = `(${KEY}):(${HASH}):(\\d+):(\\d+):(\\d+)`;
const SSK_TAIL = `(${KEY}):(${HASH})`;

interface Shape {
  kind: CapKind;
  re: RegExp;
  isDir: boolean;
  isImmutable: boolean;
  isWrite: boolean;
  isVerifier: boolean;
  form: 'chk' | 'lit' | 'ssk';
}

function shape(kind: CapKind, form: Shape['form'], flags: Partial<Omit<Shape, 'kind' | 're' | 'form'>>): Shape {
  const tail = form === 'chk' ? CHK_TAIL : form === 'lit' ? `(${B}*)` : `${SSK_TAIL}(?::[a-z0-9:]*)?`;
  return {
    kind,
    form,
    re: new RegExp(`^URI:${kind}:${tail}$`),
    isDir: false,
    isImmutable: false,
    isWrite: false,
    isVerifier: false,
    ...flags,
  };
}

const SHAPES: Shape[] = [
  shape('LIT', 'lit', { isImmutable: true }),
  shape('CHK', 'chk', { isImmutable: true }),
  shape('CHK-Verifier', 'chk', { isImmutable: true, isVerifier: true }),
  shape('DIR2-LIT', 'lit', { isDir: true, isImmutable: true }),
  shape('DIR2-CHK', 'chk', { isDir: true, isImmutable: true }),
  shape('DIR2-CHK-Verifier', 'chk', { isDir: true, isImmutable: true, isVerifier: true }),
  shape('DIR2', 'ssk', { isDir: true, isWrite: true }),
  shape('DIR2-RO', 'ssk', { isDir: true }),
  shape('DIR2-Verifier', 'ssk', { isDir: true, isVerifier: true }),
  shape('SSK', 'ssk', { isWrite: true }),
  shape('SSK-RO', 'ssk', {}),
  shape('SSK-Verifier', 'ssk', { isVerifier: true }),
  shape('MDMF', 'ssk', { isWrite: true }),
  shape('MDMF-RO', 'ssk', {}),
  shape('MDMF-Verifier', 'ssk', { isVerifier: true }),
  shape('DIR2-MDMF', 'ssk', { isDir: true, isWrite: true }),
  shape('DIR2-MDMF-RO', 'ssk', { isDir: true }),
  shape('DIR2-MDMF-Verifier', 'ssk', { isDir: true, isVerifier: true }),
];

const BY_KIND = new Map(SHAPES.map((s) => [s.kind, s]));

/** Parses a cap, or returns undefined when the text is not a well-formed cap. */
export function tryParseCap(text: string): Cap | undefined {
  if (typeof text !== 'string' || !text.startsWith('URI:')) return undefined;
  const colon = text.indexOf(':', 4);
  if (colon < 0) return undefined;
  const s = BY_KIND.get(text.slice(4, colon) as CapKind);
  if (!s) return undefined;
  const m = s.re.exec(text);
  if (!m) return undefined;
  const cap: { -readonly [K in keyof Cap]: Cap[K] } = {
    text,
    kind: s.kind,
    isDir: s.isDir,
    isImmutable: s.isImmutable,
    isWrite: s.isWrite,
    isVerifier: s.isVerifier,
  };
  if (s.form === 'chk') {
    cap.needed = Number(m[3]);
    cap.total = Number(m[4]);
    cap.size = Number(m[5]);
    if (!(cap.needed >= 1 && cap.needed <= cap.total && cap.total <= 256)) return undefined;
  } else if (s.form === 'lit') {
    // 8 base32 chars carry 5 bytes; a partial group must not leave a whole byte unused.
    const chars = m[1]!.length;
    if ([1, 3, 6].includes(chars % 8)) return undefined;
    cap.size = Math.floor((chars * 5) / 8);
  }
  return cap;
}

export class CapError extends UsageError {
  constructor(message: string) {
    super(message, 'bad-cap');
  }
}

/**
 * Parses a cap that must be well formed; the error names only its redacted form, and `what`
 * says where it came from ("argument", "child 'a.txt'").
 */
export function parseCap(text: string, what = 'cap'): Cap {
  const cap = tryParseCap(text);
  if (!cap) {
    const shown = typeof text === 'string' && text.startsWith('URI:') ? redact(text) : JSON.stringify(truncate(String(text)));
    throw new CapError(`${what}: not a valid Tahoe-LAFS cap: ${shown}`);
  }
  return cap;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** A cap that may be a child of an immutable directory: immutable, readable, not a verifier. */
export function assertImmutableReadCap(text: string, what: string): Cap {
  const cap = parseCap(text, what);
  if (!cap.isImmutable || cap.isVerifier) {
    throw new CapError(`${what}: ${redact(text)} is a ${cap.kind} cap; an immutable directory needs an immutable read cap`);
  }
  return cap;
}

/** A cap a backup root can have: a read-only or immutable directory. */
export function assertDirCap(text: string, what: string): Cap {
  const cap = parseCap(text, what);
  if (!cap.isDir || cap.isVerifier) {
    throw new CapError(`${what}: ${redact(text)} is a ${cap.kind} cap, not a directory`);
  }
  return cap;
}

/** A mutable directory cap that can be written to (for `append_to_lafs_dir`). */
export function assertWritableDirCap(text: string, what: string): Cap {
  const cap = parseCap(text, what);
  if (!cap.isDir || !cap.isWrite) {
    throw new CapError(`${what}: ${redact(text)} is a ${cap.kind} cap, not a writable directory cap`);
  }
  return cap;
}
