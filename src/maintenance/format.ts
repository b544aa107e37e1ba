/**
 * Format strings for `check`, in the original tool's (Python str.format) style, so existing
 * cron lines keep working: `{0[path]}`, `{0[check-results][results][count-good-share-hosts]}`,
 * `{backup[name]}`, `{0}` for a whole unit (as JSON), `{{` and `}}` for braces. A path (a list
 * of names) is written joined by '/'; booleans as Python writes them (True/False); a key a
 * unit lacks gives an empty string.
 */
import { UsageError } from '../errors.js';

type Value = unknown;

function render(v: Value): string {
  if (v === undefined || v === null) return v === null ? 'None' : '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join('/');
  return JSON.stringify(v);
}

interface Field {
  root: string;
  keys: string[];
}

type Piece = string | Field;

/** Parses once (errors name the format); the result renders many units. */
export function compileFormat(template: string, what = '--format'): (args: Record<string, Value>) => string {
  const pieces: Piece[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch === '{' && template[i + 1] === '{') {
      text += '{';
      i++;
    } else if (ch === '}' && template[i + 1] === '}') {
      text += '}';
      i++;
    } else if (ch === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw new UsageError(`${what}: unclosed '{' in ${JSON.stringify(template)}`);
      const spec = template.slice(i + 1, end).replace(/:.*$/, '').replace(/![rsa]$/, '');
      const m = /^(\w+)((?:\[[^\]]*\])*)$/.exec(spec);
      if (!m) throw new UsageError(`${what}: bad field {${spec}} in ${JSON.stringify(template)}`);
      if (text) pieces.push(text);
      text = '';
      pieces.push({ root: m[1]!, keys: [...m[2]!.matchAll(/\[([^\]]*)\]/g)].map((k) => k[1]!) });
      i = end;
    } else if (ch === '}') {
      throw new UsageError(`${what}: single '}' in ${JSON.stringify(template)}`);
    } else text += ch;
  }
  if (text) pieces.push(text);
  return (args) =>
    pieces
      .map((p) => {
        if (typeof p === 'string') return p;
        let v: Value = args[p.root];
        for (const k of p.keys) v = v && typeof v === 'object' ? (v as Record<string, Value>)[/^\d+$/.test(k) && Array.isArray(v) ? Number(k) : k] : undefined;
        return render(v);
      })
      .join('');
}
