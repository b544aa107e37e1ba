/**
 * The command's memory policy (src/core/memory.ts, issue 28.6) is in effect in the built
 * command: Node's Buffer pool blocks are 1 KiB, and V8's young generation stops growing short
 * of its maximum under a load that grows it to that maximum in plain Node (32 MiB here; the
 * probe's bursts of survivors take it to 16 MiB before the cap's observer runs — in a backup
 * it stays at 8 MiB: README, "Performance"). A probe module, loaded
 * before the command (`node --import`), allocates objects that survive (what makes V8 grow
 * the young generation) once the command's modules have run, then prints what it saw and
 * ends the process. Nothing is timed and no memory threshold of the machine is assumed: the plain-Node
 * run is given its maximum explicitly, and shows the probe would see the difference.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { tempDir } from '../support/tree.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

const PROBE = `
import { getHeapSpaceStatistics } from 'node:v8';
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// Starts once the command's modules have run (they set the pool size), or after 3 s (without the policy).
const began = Date.now();
const start = () => (Buffer.poolSize !== 8192 || Date.now() - began > 3000 ? load() : setTimeout(start, 10));
setTimeout(start, 10);
async function load() {
  const kept = [];
  let recent = [];
  let most = young();
  for (let round = 0; round < 100; round++) {
    for (let i = 0; i < 20000; i++) {
      const o = { i, s: 'x' + i, t: [i, i + 1] };
      recent.push(o);
      if (i % 8 === 0) kept.push(o);
    }
    if (round % 3 === 0) recent = [];
    await new Promise((r) => setImmediate(r));
    most = Math.max(most, young());
  }
  process.stdout.write('\\nPROBE ' + JSON.stringify({ young: most, pool: Buffer.poolSize, kept: kept.length }) + '\\n');
  process.exit(0);
}
`;

async function probe(args: string[]): Promise<{ young: number; pool: number; kept: number }> {
  const dir = tempDir('lb-memory-');
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, PROBE);
  const { stdout } = await run(process.execPath, ['--max-semi-space-size=16', '--import', file, ...args], { timeout: 60_000 });
  const line = stdout.split('\n').find((l) => l.startsWith('PROBE '));
  expect(line, stdout).toBeDefined();
  return JSON.parse(line!.slice('PROBE '.length)) as { young: number; pool: number; kept: number };
}

describe('the memory policy of the command', () => {
  it('stops the young generation short of the V8 maximum and makes Buffer pool blocks 1 KiB (plain Node: 32 MiB and 8 KiB)', async () => {
    const plain = await probe(['-e', '0']);
    expect(plain.kept).toBe(250_000);
    expect(plain.pool).toBe(8192);
    expect(plain.young).toBe(32 * MiB);

    const command = await probe([CLI, '--version']);
    expect(command.kept).toBe(250_000);
    expect(command.pool).toBe(1024);
    expect(command.young).toBeLessThanOrEqual(16 * MiB);
  });

  it('dump too has pool blocks of 1 KiB (its young generation follows young-generation.ts)', async () => {
    // `dump` with no arguments fails at once (usage); the probe still runs in its process.
    const dumped = await probe([CLI, 'dump']).catch((e: { stdout?: string }) => {
      const line = (e.stdout ?? '').split('\n').find((l) => l.startsWith('PROBE '));
      if (!line) throw e;
      return JSON.parse(line.slice('PROBE '.length)) as { young: number; pool: number; kept: number };
    });
    expect(dumped.pool).toBe(1024);
  });
});
