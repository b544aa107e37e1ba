/**
 * Reads the recorded gateway exchanges in test/fixtures/tahoe-webapi/ (curl transcripts of a
 * real Tahoe-LAFS 1.20 gateway) into requests and responses, plus the grid actions between
 * them (`>>> $ ./stop-grid.sh storage4`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const RECORDINGS_DIR = join(import.meta.dirname, '..', 'fixtures', 'tahoe-webapi');

export interface RecordedExchange {
  file: string;
  title: string;
  request: { method: string; path: string; headers: Record<string, string>; body?: Buffer };
  response: {
    status: number;
    headers: Record<string, string>;
    /** undefined when the transcript summarised the body ("[HTML error page …]"). */
    body?: Buffer;
    summary?: string;
  };
}

export type RecordedStep = { kind: 'exchange'; exchange: RecordedExchange } | { kind: 'grid'; action: 'stop' | 'start'; server?: string };

function bodyFrom(lines: string[]): Buffer {
  const rest = [...lines];
  if (rest[rest.length - 1] === '[no trailing newline]') {
    rest.pop();
    return Buffer.from(rest.join('\n'), 'utf8');
  }
  return Buffer.from(rest.length ? `${rest.join('\n')}\n` : '', 'utf8');
}

function parseHeaders(lines: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return h;
}

function parseSection(file: string, text: string): RecordedExchange | undefined {
  const lines = text.split('\n');
  const title = (lines.find((l) => l.startsWith('### ')) ?? '').slice(4);
  const reqAt = lines.findIndex((l) => l.startsWith('--- request (as sent'));
  const resAt = lines.findIndex((l) => l.startsWith('--- response'));
  if (reqAt < 0 || resAt < 0) return undefined;
  const bodyAt = lines.findIndex((l, i) => i > reqAt && i < resAt && l.startsWith('--- request body'));
  const reqLines = lines.slice(reqAt + 1, bodyAt >= 0 ? bodyAt : resAt);
  const [method, path] = reqLines[0]!.split(' ');
  const request: RecordedExchange['request'] = { method: method!, path: path!, headers: parseHeaders(reqLines.slice(1)) };
  if (bodyAt >= 0) request.body = bodyFrom(lines.slice(bodyAt + 1, resAt));

  const statusLine = lines[resAt + 1]!;
  const status = Number(statusLine.split(' ')[1]);
  let i = resAt + 2;
  const headerLines: string[] = [];
  while (i < lines.length && lines[i] !== '') headerLines.push(lines[i++]!);
  i++; // the blank line after the headers
  let end = lines.length;
  for (let j = i; j < lines.length; j++) {
    if (lines[j]!.startsWith('>>>') || lines[j]!.startsWith('=====')) {
      end = j;
      break;
    }
  }
  const bodyLines = lines.slice(i, end);
  while (bodyLines.length && bodyLines[bodyLines.length - 1] === '') bodyLines.pop();
  const last = bodyLines.filter((l) => l !== '[no trailing newline]');
  const response: RecordedExchange['response'] = { status, headers: parseHeaders(headerLines) };
  if (last.length >= 1 && /^\[(HTML error page|HEAD request)/.test(last[last.length - 1]!)) response.summary = last[last.length - 1];
  else response.body = bodyFrom(bodyLines);
  return { file, title, request, response };
}

/** All steps of all recordings, in file order. */
export function loadRecordings(dir = RECORDINGS_DIR): RecordedStep[] {
  const steps: RecordedStep[] = [];
  for (const file of readdirSync(dir).filter((f) => /^\d\d-.*\.txt$/.test(f)).sort()) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const section of text.split(/^={20,}$/m)) {
      const ex = parseSection(file, section);
      if (ex) steps.push({ kind: 'exchange', exchange: ex });
      for (const m of section.matchAll(/^>>> \$ \.\/(stop|start)-grid\.sh\s*(\S*)/gm)) {
        steps.push({ kind: 'grid', action: m[1] as 'stop' | 'start', server: m[2] || undefined });
      }
    }
  }
  return steps;
}
