/**
 * Redaction. A cap is a secret: nothing in this project puts one into a log line or an error
 * message. `redact(cap)` gives a short stable tag to refer to it instead; `scrubCaps` replaces
 * every cap (and a URL's password) inside free text. Below everything, the log included, so
 * that every layer can redact without knowing the client (tahoe/caps.ts parses caps).
 */
import { createHash } from 'node:crypto';

/** A short, stable, non-reversible tag for a cap, for log lines and error messages. */
export function redact(cap: string): string {
  return `cap#${createHash('sha256').update(cap).digest('hex').slice(0, 10)}`;
}

/**
 * A cap in any spelling: `URI:` or `uri:`, its colons literal or percent-encoded (`%3A`, as in
 * a URL path a gateway echoes back), its body running on through further colons and `%2F`s.
 */
const CAP_IN_TEXT = /uri(?::|%3a)[a-z0-9-]+(?::|%3a)(?:[a-z0-9_-]|:|%3a|%2f)*/gi;
const CAP_HINT = /uri(?::|%3a)/i;

/** userinfo in a URL: `scheme://user:password@` (a gateway URL may carry a password). */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi;

/** The cap a match stands for, in its canonical spelling, so one cap always gets one tag. */
function canonical(match: string): string {
  const plain = match.replace(/%3a/gi, ':').replace(/%2f/gi, '/').split('/')[0]!;
  const [, kind, ...rest] = plain.split(':');
  return ['URI', kind!.toUpperCase(), ...rest].join(':');
}

/** Replaces every cap inside free text (gateway messages, log lines), in any spelling. */
export function scrubCaps(text: string): string {
  let out = CAP_HINT.test(text) ? text.replace(CAP_IN_TEXT, (m) => redact(canonical(m))) : text;
  if (out.includes('@')) out = scrubUrl(out);
  return out;
}

/** Removes the userinfo (user and password) of URLs in `text`. */
export function scrubUrl(text: string): string {
  return text.replace(USERINFO, '$1***@');
}
