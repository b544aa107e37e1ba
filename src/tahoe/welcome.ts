/**
 * The gateway's welcome page as JSON (`GET /?t=json`): the storage servers it knows and
 * whether it is connected to each, and its introducers. Tahoe-LAFS 1.20 answers:
 *
 *     {"introducers": {"statuses": ["Connected to tcp:…"]},
 *      "servers": [{"nodeid": "v0-…", "connection_status": "Connected to tcp:… via tcp",
 *                   "available_space": 83883591168, "nickname": "storage1",
 *                   "version": "tahoe-lafs/1.20.0", "last_received_data": 1796413685.02}]}
 */
import { TahoeError } from './errors.js';

export interface StorageServer {
  /** The server's node id (`v0-…`): stable for the life of the server; not a secret. */
  nodeid: string;
  nickname?: string;
  /** The gateway's words for the connection ("Connected to tcp:… via tcp", "Reconnecting…"). */
  status: string;
  /** The gateway has a connection to it now. */
  connected: boolean;
  availableSpace?: number;
  version?: string;
  /** Unix time (seconds) the gateway last heard from it. */
  lastReceivedData?: number;
}

export interface GatewayWelcome {
  /** Storage servers in the order the gateway lists them. */
  servers: StorageServer[];
  /** The introducers' connection statuses (empty for a grid without one). */
  introducers: string[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function parseWelcome(text: string, op: string): GatewayWelcome {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TahoeError(op, 'protocol', 'the welcome page is not JSON: is the URL a Tahoe-LAFS gateway?');
  }
  const servers = (raw as { servers?: unknown })?.servers;
  if (!raw || typeof raw !== 'object' || !Array.isArray(servers)) {
    throw new TahoeError(op, 'protocol', 'the welcome page has no list of servers: is the URL a Tahoe-LAFS gateway?');
  }
  const out: StorageServer[] = [];
  for (const s of servers as unknown[]) {
    const r = (s ?? {}) as Record<string, unknown>;
    const nodeid = str(r.nodeid);
    if (!nodeid) throw new TahoeError(op, 'protocol', 'the welcome page lists a server without a node id');
    const status = str(r.connection_status) ?? '';
    out.push({
      nodeid,
      nickname: str(r.nickname),
      status,
      connected: /^connected\b/i.test(status),
      availableSpace: num(r.available_space),
      version: str(r.version),
      lastReceivedData: num(r.last_received_data),
    });
  }
  const statuses = (raw as { introducers?: { statuses?: unknown } }).introducers?.statuses;
  const introducers = Array.isArray(statuses) ? statuses.filter((x): x is string => typeof x === 'string') : [];
  return { servers: out, introducers };
}
