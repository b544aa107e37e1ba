/** Shapes of the web API's JSON, as this client hands them on. */
import type { Metadata } from '../core/child.js';

export type NodeType = 'filenode' | 'dirnode' | 'unknown';


export interface NodeInfo {
  type: NodeType;
  mutable?: boolean;
  format?: string;
  size?: number;
  ro_uri?: string;
  rw_uri?: string;
  verify_uri?: string;
  /** Present on children of a directory (and on a file reached through a directory path). */
  metadata?: Metadata;
  /** Directories only: children by name. */
  children?: Record<string, NodeInfo>;
}

export interface CheckResults {
  'storage-index'?: string;
  summary?: string;
  results?: {
    healthy?: boolean;
    recoverable?: boolean;
    'count-shares-good'?: number;
    'count-shares-needed'?: number;
    'count-shares-expected'?: number;
    'count-good-share-hosts'?: number;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface CheckAndRepairResults {
  'storage-index'?: string;
  'repair-attempted'?: boolean;
  'repair-successful'?: boolean;
  'pre-repair-results'?: CheckResults;
  'post-repair-results'?: CheckResults;
  [key: string]: unknown;
}

/** A node line of `t=stream-manifest` or `t=stream-deep-check`. */
export interface NodeUnit {
  type: 'file' | 'directory' | string;
  path: string[];
  cap: string;
  verifycap: string;
  repaircap: string;
  'storage-index': string;
  'check-results'?: CheckResults;
  'check-and-repair-results'?: CheckAndRepairResults;
  [key: string]: unknown;
}

export interface StatsUnit {
  type: 'stats';
  stats: Record<string, unknown>;
}

/** The plain-text `ERROR:` line (and traceback) a gateway ends a stream with. */
export interface ErrorUnit {
  type: 'error';
  message: string;
  traceback: string;
}

export type StreamUnit = NodeUnit | StatsUnit | ErrorUnit;

export function isNodeUnit(u: StreamUnit): u is NodeUnit {
  return u.type !== 'stats' && u.type !== 'error';
}
