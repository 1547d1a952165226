import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodePem, verifyCsr } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { MemoryKeyStore } from './memory-key.js';
import { simulate } from './simulate.js';

/* The simulator's own parts; the whole run against a real server is test/fleet-provisioning.test.ts. */

const dir = mkdtempSync(join(tmpdir(), 'certfleet-sim-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const badInput = (pattern: RegExp) => (err: unknown) => err instanceof AgentError && err.code === 'bad-input' && pattern.test(err.message);

describe('simulate', () => {
  it('keeps each virtual device key in memory: its CSR verifies and names the device', () => {
    const key = MemoryKeyStore.generate();
    const csr = verifyCsr(decodePem(key.createCsr('CN=sim-1'), 'CERTIFICATE REQUEST'));
    assert.ok(csr.publicKey.key.equals(key.publicKey()));
    assert.match(key.tlsKeyPem(), /BEGIN PRIVATE KEY/);
  });

  it('says plainly when the data dir names no server', async () => {
    await assert.rejects(simulate({ data: dir, devices: 1 }), badInput(/cli\.json/));
    writeFileSync(join(dir, 'cli.json'), JSON.stringify({ url: 'https://localhost:1', token: 'cf_x' }));
    await assert.rejects(simulate({ data: dir, devices: 1 }), badInput(/ports\.json/));
    writeFileSync(join(dir, 'ports.json'), '{}');
    await assert.rejects(simulate({ data: dir, devices: 1 }), badInput(/mqtt port/));
    await assert.rejects(simulate({ data: dir, devices: 0 }), badInput(/--devices/));
  });
});
