/** Parses `?t=json` answers (`["filenode", {...}]`, `["dirnode", {... children ...}]`). */
import { TahoeError } from './errors.js';
import type { NodeInfo, NodeType } from './types.js';

const TYPES = new Set<NodeType>(['filenode', 'dirnode', 'unknown']);

export function parseNodeJson(text: string, op: string): NodeInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TahoeError(op, 'protocol', 'the gateway answered something that is not JSON');
  }
  return toNode(raw, op);
}

function toNode(raw: unknown, op: string): NodeInfo {
  if (!Array.isArray(raw) || raw.length !== 2 || !TYPES.has(raw[0]) || typeof raw[1] !== 'object' || raw[1] === null) {
    throw new TahoeError(op, 'protocol', 'unexpected JSON shape for a node');
  }
  const type = raw[0] as NodeType;
  const d = raw[1] as Record<string, unknown>;
  const node: NodeInfo = { type };
  for (const k of ['ro_uri', 'rw_uri', 'verify_uri', 'format'] as const) {
    if (typeof d[k] === 'string') node[k] = d[k] as string;
  }
  if (typeof d.mutable === 'boolean') node.mutable = d.mutable;
  if (typeof d.size === 'number') node.size = d.size;
  if (d.metadata && typeof d.metadata === 'object' && !Array.isArray(d.metadata)) {
    node.metadata = d.metadata as Record<string, unknown>;
  }
  if (type === 'dirnode') {
    const kids = d.children;
    if (kids !== undefined && (typeof kids !== 'object' || kids === null || Array.isArray(kids))) {
      throw new TahoeError(op, 'protocol', 'unexpected JSON shape for directory children');
    }
    // A null prototype: a child may be called "__proto__" in a hostile or odd directory.
    node.children = Object.create(null) as Record<string, NodeInfo>;
    for (const [name, child] of Object.entries((kids ?? {}) as Record<string, unknown>)) {
      node.children[name] = toNode(child, op);
    }
  }
  return node;
}
