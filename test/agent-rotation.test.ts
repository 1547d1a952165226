/**
 * The device agent's renewal flows against a real `certfleet serve`, driven
 * through the certfleet-agent command as a device would run it:
 *
 * - EST (RFC 7030): `certfleet-agent enroll --est` with HTTP Basic, then
 *   `certfleet-agent renew --est` authenticated by the enrolled certificate;
 *   the server is recognised only by the root put in the agent's trust store.
 * - MQTT rotation: `certfleet-agent simulate --renew`: devices provisioned
 *   by claim, then renewed over `$certfleet/things/{thing}/certificate/renew`
 *   with a trial connection and confirm (docs/device-protocol.md). Skipped,
 *   with the reason, while the server does not answer that topic.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Certificate } from '@certfleet/pki';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

const AGENT = resolve(import.meta.dirname, '../packages/agent/bin/certfleet-agent.js');

function agent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [AGENT, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let data: string;
let server: ServerProcess;
let cli: { url: string; token: string; caFile: string };

before(async () => {
  data = tempDir('certfleet-agent-rot-');
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  cli = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as typeof cli;
});
after(async () => {
  await server?.stop();
});

describe('EST with the agent', () => {
  const dir = () => join(data, 'device-est');
  const caFile = () => (cli.caFile.startsWith('/') ? cli.caFile : join(data, cli.caFile));

  /** A one-time enrollment secret bound to `thing` (certfleet est secret create). */
  async function secretFor(thing: string): Promise<{ username: string; secret: string }> {
    const r = await certfleet(['est', 'secret', 'create', '--thing', thing, '--json', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { secrets: { username: string; secret: string }[] }).secrets[0]!;
  }

  it('refuses to enroll before the server root is trusted', async () => {
    const r = await agent(['enroll', '--dir', dir(), '--est', cli.url, '--username', 'dev-est-1', '--password', 'whatever']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no trusted roots/);
  });

  it('enrolls with HTTP Basic, then re-enrolls with its certificate: same subject, new key, new serial', async () => {
    assert.equal((await agent(['trust', 'add', caFile(), '--dir', dir()])).code, 0);
    const { username, secret } = await secretFor('dev-est-1');
    const e = await agent(['enroll', '--dir', dir(), '--est', cli.url, '--username', username, '--password', secret, '--subject', 'CN=dev-est-1']);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /enrolled CN=dev-est-1/);
    // One-time: the same secret enrolls nothing a second time.
    const copy = join(data, 'device-est-copy');
    assert.equal((await agent(['trust', 'add', caFile(), '--dir', copy])).code, 0);
    const again = await agent(['enroll', '--dir', copy, '--est', cli.url, '--username', username, '--password', secret]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /HTTP 401/);
    const first = Certificate.fromPem(readFileSync(join(dir(), 'current', 'cert.pem'), 'utf8'));
    const firstKey = readFileSync(join(dir(), 'current', 'key.pem'), 'utf8');

    const r = await agent(['renew', '--dir', dir(), '--est', cli.url]);
    assert.equal(r.code, 0, r.stderr);
    const second = Certificate.fromPem(readFileSync(join(dir(), 'current', 'cert.pem'), 'utf8'));
    assert.equal(second.subject(), first.subject());
    assert.notEqual(second.serial(), first.serial());
    assert.notEqual(readFileSync(join(dir(), 'current', 'key.pem'), 'utf8'), firstKey);
  });

  it('refuses a wrong secret with the server\'s 401', async () => {
    const other = join(data, 'device-est-2');
    assert.equal((await agent(['trust', 'add', caFile(), '--dir', other])).code, 0);
    const { username } = await secretFor('dev-est-2');
    const r = await agent(['enroll', '--dir', other, '--est', cli.url, '--username', username, '--password', 'wrong']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HTTP 401/);
  });
});

describe('renewal over MQTT (certfleet-agent simulate --renew)', () => {
  it('provisions devices by claim and renews each over MQTT with a trial connection and confirm', async (t) => {
    const r = await agent(['simulate', '--devices', '5', '--data', data, '--renew', '--timeout', '10000']);
    const summary = r.stdout.trim().split('\n').at(-1) ?? '';
    // The platform side: until the server answers …/certificate/renew, every renewal times out.
    if (/renew: timeout/.test(r.stderr) && !/[1-9]\d* renewed/.test(summary)) {
      t.skip('waiting for the server: certfleet serve does not answer $certfleet/things/{thing}/certificate/renew yet');
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summary, '5 provisioned, 5 connected, 0 failed, 5 renewed');
  });
});
