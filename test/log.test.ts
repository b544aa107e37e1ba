/** No cap ever appears in a log line, at any level. */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { configureLogging, log } from '../src/log.js';
import { TahoeClient } from '../src/tahoe/client.js';
import { redact } from '../src/tahoe/caps.js';
import { startFlaky } from './support/flaky.js';
import { useGrid } from './support/grid.js';
import { pauseAudit, rawLogLines } from './setup.js';

const env = useGrid();

describe('logging', () => {
  it('a verbose operation (debug requests, retries, noise level) logs no URI: string', async () => {
    const written: string[] = [];
    configureLogging({ level: 'noise', sink: (l) => written.push(l) });
    const flaky = await startFlaky(env.url, (n) => (n % 3 === 0 ? '503' : 'ok'));
    const c = new TahoeClient({ url: flaky.url, debugRequests: true, retry: { attempts: 2, delays: [0] } });
    const file = await c.putFile(() => Readable.from([randomBytes(4000)]));
    const dir = await c.mkdirImmutable([{ name: 'f', type: 'filenode', cap: file, metadata: { mode: '100644' } }]);
    const mutable = await c.mkdirMutable();
    await c.link(mutable, 'b', dir);
    for await (const u of c.deepCheck(dir, { addLease: true })) void u;
    await c.close();
    await flaky.close();
    expect(written.length).toBeGreaterThan(5);
    expect(written.some((l) => l.includes('retrying'))).toBe(true);
    expect(written.join('')).not.toMatch(/URI:/);
    expect(rawLogLines.join('')).not.toMatch(/URI:[A-Z]/);
  });

  it('scrubs a cap that a message or field carries anyway, leaving its stable redacted tag', () => {
    const written: string[] = [];
    configureLogging({ level: 'noise', sink: (l) => written.push(l) });
    pauseAudit(true);
    const cap = 'URI:CHK:un76sm4rsegnakzy7m4jeeyova:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:2:4:1024';
    log.warn({ detail: `see ${cap}` }, `oops ${cap}`);
    configureLogging({ format: 'json' });
    log.error({ cap }, 'json line');
    configureLogging({ format: 'text' });
    pauseAudit(false);
    expect(written.join('')).not.toContain('URI:');
    expect(written[0]).toContain(redact(cap));
    expect(written[1]).toContain(redact(cap));
    expect(JSON.parse(written[1]!)).toMatchObject({ msg: 'json line', cap: redact(cap) });
  });
});
