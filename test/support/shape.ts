/**
 * Compares a recorded gateway answer with the embedded grid's: same keys in the same order,
 * same value types, same values — except where a value differs from grid to grid by nature
 * (caps: same kind and size; storage indexes, server ids, timestamps: same form).
 */
import { tryParseCap } from '../../src/tahoe/caps.js';

const VOLATILE_KEYS = new Set(['storage-index', 'linkcrtime', 'linkmotime', 'last_received_data', 'nodeid', 'connection_status', 'available_space', 'version', 'nickname', 'statuses']);
/** Mutable directories are packed differently by the stand-in; their sizes are not compared. */
const MUTABLE_SIZE_KEYS = new Set(['size-directories', 'largest-directory']);
/** Maps whose keys are data (share numbers, server-dependent), not field names. */
const DATA_KEYED = new Set(['sharemap']);

export function capShape(s: string): string | undefined {
  const cap = tryParseCap(s);
  if (!cap) return undefined;
  return cap.kind === 'LIT' || cap.kind === 'DIR2-LIT' ? s : `${cap.kind}:${cap.size ?? ''}`;
}

export function compareShapes(rec: unknown, ours: unknown, path = '$', opts: { mutableSizes?: boolean } = {}): string[] {
  const key = path.split('.').pop()!.replace(/\[\d+\]$/, '');
  if (typeof rec === 'string' && typeof ours === 'string') {
    const rc = capShape(rec);
    if (rc !== undefined) return rc === capShape(ours) ? [] : [`${path}: cap ${rc} vs ${capShape(ours) ?? JSON.stringify(ours)}`];
    if (rec.startsWith('imm.')) return ours.startsWith('imm.') ? [] : [`${path}: unknown-cap form`];
    if (/^v0-[a-z2-7]{52}$/.test(rec)) return /^v0-[a-z2-7]{52}$/.test(ours) ? [] : [`${path}: server id form`];
    if (key === 'storage-index') return rec.length === ours.length ? [] : [`${path}: storage index ${rec} vs ${ours}`];
    if (VOLATILE_KEYS.has(key)) return [];
    return rec === ours ? [] : [`${path}: ${JSON.stringify(rec)} vs ${JSON.stringify(ours)}`];
  }
  if (typeof rec === 'number' && typeof ours === 'number') {
    if (VOLATILE_KEYS.has(key) || (opts.mutableSizes && MUTABLE_SIZE_KEYS.has(key))) return [];
    return rec === ours ? [] : [`${path}: ${rec} vs ${ours}`];
  }
  if (Array.isArray(rec) && Array.isArray(ours)) {
    if (VOLATILE_KEYS.has(key)) return [];
    if (rec.length !== ours.length) return [`${path}: ${rec.length} items vs ${ours.length}`];
    return rec.flatMap((r, i) => compareShapes(r, ours[i], `${path}[${i}]`, opts));
  }
  if (rec && ours && typeof rec === 'object' && typeof ours === 'object') {
    const rk = Object.keys(rec);
    const ok = Object.keys(ours);
    if (DATA_KEYED.has(key)) {
      if (rk.length !== ok.length) return [`${path}: ${rk.length} keys vs ${ok.length}`];
      return Object.values(ours).every((v) => Array.isArray(v)) ? [] : [`${path}: values not lists`];
    }
    if (rk.join(',') !== ok.join(',')) return [`${path}: keys [${rk.join(',')}] vs [${ok.join(',')}]`];
    return rk.flatMap((k) => compareShapes((rec as Record<string, unknown>)[k], (ours as Record<string, unknown>)[k], `${path}.${k}`, opts));
  }
  if (rec === ours) return [];
  return [`${path}: ${typeof rec} vs ${typeof ours}`];
}
