/**
 * Who may ask: a request must name the address served in its Host header (a page of another
 * site whose name was rebound to 127.0.0.1 sends its own name: refused, DNS rebinding), and
 * carry the session cookie, the token (`?token=`, once: it is swapped for the cookie), or —
 * for WebDAV clients — HTTP Basic with any user and the token as password. Everything else is 401.
 *
 * The cookie holds a random session id of this run, not the token (cookies are not kept apart
 * by port: another local server would see it); HttpOnly (no script reads it), SameSite=Strict
 * (no other site's page sends it). Comparisons take the same time whatever matches.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { networkInterfaces, hostname } from 'node:os';

const same = (a: string, b: string) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

export type Verdict = { ok: true; via: 'cookie' | 'token' | 'basic' } | { ok: false; status: 401 | 421; why: string };

export class Guard {
  readonly session = randomBytes(24).toString('base64url');
  readonly cookieName: string;
  private allowed = new Set<string>();

  constructor(
    private readonly token: string,
    readonly port: number,
    host: string,
    loopback: boolean,
  ) {
    this.cookieName = `lafs_backup_${port}`;
    const names = loopback ? ['127.0.0.1', 'localhost', '[::1]'] : [host.includes(':') ? `[${host}]` : host];
    if (!loopback && (host === '0.0.0.0' || host === '::')) {
      // Any address of this machine: its name and each interface's address.
      names.push(hostname().toLowerCase(), 'localhost', '127.0.0.1', '[::1]');
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.family === 'IPv6' ? `[${a.address.replace(/%.*$/, '')}]` : a.address);
    }
    for (const n of names) {
      this.allowed.add(`${n}:${port}`);
      if (port === 80) this.allowed.add(n);
    }
  }

  /** The Host header names the address served. */
  hostOk(req: IncomingMessage): boolean {
    const h = req.headers.host?.toLowerCase();
    return h !== undefined && this.allowed.has(h);
  }

  tokenOk(t: string | null | undefined): boolean {
    return typeof t === 'string' && same(t, this.token);
  }

  check(req: IncomingMessage, url: URL): Verdict {
    if (!this.hostOk(req)) return { ok: false, status: 421, why: 'the Host header does not name the address served' };
    const cookie = cookies(req.headers.cookie)[this.cookieName];
    if (cookie !== undefined && same(cookie, this.session)) return { ok: true, via: 'cookie' };
    if (url.searchParams.has('token')) return this.tokenOk(url.searchParams.get('token')) ? { ok: true, via: 'token' } : { ok: false, status: 401, why: 'wrong token' };
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      if (colon >= 0 && this.tokenOk(text.slice(colon + 1))) return { ok: true, via: 'basic' };
      return { ok: false, status: 401, why: 'wrong password (the token)' };
    }
    return { ok: false, status: 401, why: 'no session' };
  }

  setCookie(): string {
    return `${this.cookieName}=${this.session}; Path=/; HttpOnly; SameSite=Strict`;
  }
}

function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** A fresh token: 32 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}
