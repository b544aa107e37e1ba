/**
 * What a gateway's error answer says, in words. A real Tahoe-LAFS gateway answers a failure
 * with an HTML traceback page (the exception in `<div class="error">` blocks), a plain-text
 * traceback (last line: `module.Class: message`), a JSON `{"error": "…"}`, or a short text
 * (`NoSharesError: …`). We take the exception's class and message out of any of these and, for
 * the ones a user meets, put a sentence that says what happened and what to do in front.
 * Caps in the gateway's text are redacted; the result is one line.
 */
import { scrubCaps } from '../core/redact.js';

export interface GatewayException {
  /** The exception's class without its module (`UploadUnhappinessError`), if one was found. */
  cls?: string;
  /** Its message, or the first meaningful line of the answer. */
  message: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", '#x27': "'" };

function unescapeHtml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_m, e: string) => ENTITIES[e]!);
}

function splitClass(text: string): GatewayException {
  const m = /^((?:[A-Za-z_][\w]*\.)*([A-Z][\w]*(?:Error|Exception|Failure)))(?::\s*([\s\S]*))?$/.exec(text.trim());
  if (!m) return { message: text.trim() };
  return { cls: m[2], message: (m[3] ?? '').trim() };
}

/** The exception in an error body, whatever form the gateway chose. */
export function parseGatewayError(body: string): GatewayException {
  const json = /^\s*\{\s*"error"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(body);
  if (json) return splitClass((JSON.parse(json[1]!) as string).split('\n')[0]!);
  // Twisted's HTML page: <div class="error"><span>mod.Class</span>: <span>message</span></div>
  const div = /<div class="error">\s*<span>([^<]*)<\/span>:?\s*(?:<span>([\s\S]*?)<\/span>)?\s*<\/div>/i.exec(body);
  if (div) return { ...splitClass(unescapeHtml(div[1]!)), message: unescapeHtml(div[2] ?? '').trim() };
  const para = /<p>([^<]*)<\/p>/i.exec(body);
  if (para) return splitClass(unescapeHtml(para[1]!));
  const lines = body.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('<') && !l.startsWith('['));
  if (body.trimStart().startsWith('Traceback')) {
    // The last line of a Python traceback names the exception.
    const last = [...lines].reverse().find((l) => !l.startsWith('File ') && !l.startsWith('Traceback'));
    if (last) return splitClass(last);
  }
  return splitClass(lines[0] ?? '');
}

/** What to tell a user for the exceptions they meet; `ex` is the parsed answer. */
function sentence(ex: GatewayException): string | undefined {
  switch (ex.cls) {
    case 'UploadUnhappinessError': {
      const m = /placed on only (\d+) server\(s\).*?at least (\d+) such servers/.exec(ex.message);
      const counts = m ? ` (shares could be placed on only ${m[1]} server(s), ${m[2]} are needed)` : '';
      return `the grid has too few storage servers connected for shares.happy${counts}: start more storage servers, or lower shares.happy in the gateway's tahoe.cfg`;
    }
    case 'NotEnoughSharesError':
    case 'NoSharesError':
    case 'UnrecoverableFileError':
      return 'the object cannot be recovered: too few of its shares were found (storage servers down or disconnected, or the shares are lost); run `check` on the backup';
    case 'NoSuchChildError':
      return 'no such name in that directory';
    case 'MustBeDeepImmutableError':
    case 'MustBeReadonlyError':
      return 'the gateway refused a mutable cap where only immutable ones are allowed';
    case 'NotWriteableError':
      return 'that directory is read-only (a read cap was given where a write cap is needed)';
    default:
      return undefined;
  }
}

const MAX = 400;

/** One line: the sentence (if any), then the gateway's own class and message, caps redacted. */
export function describeGatewayError(body: string): string {
  const ex = parseGatewayError(body);
  const said = scrubCaps([ex.cls, ex.message].filter(Boolean).join(': ')).replace(/\s+/g, ' ').trim();
  const short = said.length > MAX ? `${said.slice(0, MAX - 3)}...` : said;
  const words = sentence(ex);
  if (words) return short ? `${words} (gateway: ${short})` : words;
  return short;
}
