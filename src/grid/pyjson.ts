/**
 * JSON written the way Python's `json.dumps` writes it (the gateway is Python): separators
 * `", "` and `": "`, ASCII-only output, and `indent=1` for `?t=json` answers. The embedded
 * grid uses it so that byte counts (dirnode sizes inside caps, Content-Length) match a real
 * gateway's.
 */

export function pyDumps(value: unknown, indent?: number): string {
  return dump(value, indent, 0);
}

function dump(v: unknown, indent: number | undefined, depth: number): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'string') return quote(v);
  const pad = (d: number) => (indent === undefined ? '' : '\n' + ' '.repeat(indent * d));
  const itemSep = indent === undefined ? ', ' : ',';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[${v.map((x) => pad(depth + 1) + dump(x, indent, depth + 1)).join(itemSep)}${pad(depth)}]`;
  }
  const entries = v instanceof Map ? [...v.entries()] : Object.entries(v as object);
  if (entries.length === 0) return '{}';
  return `{${entries.map(([k, x]) => `${pad(depth + 1)}${quote(String(k))}: ${dump(x, indent, depth + 1)}`).join(itemSep)}${pad(depth)}}`;
}

const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    if (SHORT[ch]) out += SHORT[ch];
    else if (code < 0x20 || code > 0x7e) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}
