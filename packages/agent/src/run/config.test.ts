import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AgentError } from '../errors.js';
import { configFile, readConfig, updateConfig } from './config.js';

describe('agent.json', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'certfleet-config-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps what the first start was given, so a restart needs only --data; later flags replace values', async () => {
    assert.deepEqual(await readConfig(dir), {});
    await updateConfig(dir, { mqtt: 'mqtts://localhost:8883', api: 'https://localhost:8443', threshold: { days: 28 } });
    const later = await updateConfig(dir, { mqtt: undefined, thing: 'pump-7', threshold: { fraction: 0.33 } });
    assert.deepEqual(later, { mqtt: 'mqtts://localhost:8883', api: 'https://localhost:8443', thing: 'pump-7', threshold: { fraction: 0.33 } });
    assert.deepEqual(await readConfig(dir), later);
    assert.equal((await stat(configFile(dir))).mode & 0o777, 0o600);
  });

  const refused: [string, object, RegExp][] = [
    ['an MQTT URL that is not mqtt(s)', { mqtt: 'http://x' }, /MQTT URL/],
    ['an api URL without TLS', { api: 'http://localhost:8443' }, /api URL/],
    ['renewal via EST without a server', { renewVia: 'est' }, /--est/],
    ['a fraction outside 0..1', { threshold: { fraction: 1.5 } }, /--renew-fraction/],
    ['a jitter outside 0..1', { jitter: 2 }, /--jitter/],
  ];
  for (const [what, change, match] of refused) {
    it(`refuses ${what}, leaving the file as it was`, async () => {
      await assert.rejects(updateConfig(dir, change), (e: AgentError) => e.code === 'bad-input' && match.test(e.message));
      assert.deepEqual(await readConfig(dir), {});
    });
  }

  it('says which file to fix when it is not JSON', async () => {
    await writeFile(configFile(dir), '{oops');
    await assert.rejects(readConfig(dir), (e: AgentError) => e.code === 'bad-input' && e.message.includes(configFile(dir)));
    assert.equal(await readFile(configFile(dir), 'utf8'), '{oops');
  });
});
