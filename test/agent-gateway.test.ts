/**
 * The gateway's half of bootstrap by network identity, end to end against a
 * real `certfleet serve`, driven through the certfleet-agent command: an
 * operator makes the gateway thing (certfleet.role=gateway) and signs the
 * CSR of a key the gateway's agent made; the gateway installs it and trusts
 * the server's root. Then `certfleet-agent gateway bootstrap --imsi …
 * --device-dir D` leaves an agent data dir for a device that cannot make
 * keys, whose certificate connects to the MQTT port and publishes under the
 * policy the template attached; the same IMSI again under a template whose
 * override rule is `fail` exits non-zero with the server's words, and a
 * device's own CSR is relayed with `--csr`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Certificate } from '@certfleet/pki';
import { CertificateSlots, connectMqtt, readConfig, TimeFloor, TrustStore } from '@certfleet/agent';
import { certfleet, serve, tempDir, type ServerProcess, certfleetOk } from './helpers/cli.js';

const AGENT = resolve(import.meta.dirname, '../packages/agent/bin/certfleet-agent.js');
const IMSI = '001010123456789';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
const agent = (args: string[]) => run(process.execPath, [AGENT, ...args]);

let data: string;
let server: ServerProcess;
let api: string;
const gw = () => join(data, 'gateway-agent');

const cli = (args: string[]): Promise<string> => certfleetOk(data, args);

before(async () => {
  data = tempDir('certfleet-agent-gw-');
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  api = `https://localhost:${server.ports.api}`;
  const policy = join(data, 'cellular-policy.json');
  writeFileSync(
    policy,
    JSON.stringify({
      statements: [
        { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
        { effect: 'allow', actions: ['publish'], resources: ['cellular/${thing.name}/#'] },
      ],
    }),
  );
  await cli(['policy', 'create', 'cellular', '--file', policy]);
  const template = (override: string) => ({
    parameters: { IMSI: { type: 'string' }, Model: { type: 'string', default: 'm1' } },
    thing: { name: 'imsi-${parameters.IMSI}', attributes: { model: '${parameters.Model}' }, override },
    policies: ['cellular'],
    deviceConfiguration: { topic: 'cellular/imsi-${parameters.IMSI}/up' },
  });
  for (const [name, override] of [['cellular-strict', 'fail'], ['cellular', 'do-nothing']] as const) {
    const file = join(data, `${name}.json`);
    writeFileSync(file, JSON.stringify(template(override)));
    await cli(['template', 'create', name, '--file', file]);
  }

  // The gateway: its key made by its own agent, its certificate signed by the operator.
  await cli(['thing', 'create', 'gw-1', '--attr', 'certfleet.role=gateway']);
  const csr = join(data, 'gw-1.csr');
  const keygen = await agent(['keygen', '--dir', gw(), '--subject', 'CN=gw-1', '--csr', csr]);
  assert.equal(keygen.code, 0, keygen.stderr);
  await cli(['cert', 'sign', '--thing', 'gw-1', '--csr', csr, '--out', join(data, 'gw-issued')]);
  const install = await agent(['install', '--dir', gw(), '--cert', join(data, 'gw-issued', 'cert.pem'), '--chain', join(data, 'gw-issued', 'chain.pem')]);
  assert.equal(install.code, 0, install.stderr);
  const trust = await agent(['trust', 'add', join(data, 'gw-issued', 'ca.pem'), '--dir', gw()]);
  assert.equal(trust.code, 0, trust.stderr);
});
after(async () => {
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('certfleet-agent gateway bootstrap', () => {
  it('makes a device data dir by IMSI whose certificate connects over MQTT and publishes under the template\'s policy', async () => {
    const device = join(data, 'module-1');
    const r = await agent(['gateway', 'bootstrap', '--data', gw(), '--api', api, '--imsi', IMSI, '--template', 'cellular-strict', '--param', 'Model=x7', '--device-dir', device]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`bootstrapped thing imsi-${IMSI}`));

    // A normal agent data dir: the key private to the owner, the certificate on it, the roots, agent.json.
    assert.equal(statSync(join(device, 'current', 'key.pem')).mode & 0o777, 0o600);
    const slots = await CertificateSlots.open(device, { recover: false });
    const id = await slots.current();
    assert.ok(id, 'current/ holds the device identity');
    assert.match(id.certificate.subject(), new RegExp(`CN=imsi-${IMSI}`));
    assert.deepEqual(JSON.parse(readFileSync(join(device, 'device-configuration.json'), 'utf8')), { topic: `cellular/imsi-${IMSI}/up` });
    const config = await readConfig(device);
    assert.equal(config.thing, `imsi-${IMSI}`);
    assert.equal(config.api, api);
    const thing = JSON.parse(await cli(['thing', 'get', `imsi-${IMSI}`, '--json'])) as { attributes: Record<string, string> };
    assert.deepEqual(thing.attributes, { imsi: IMSI, model: 'x7' });

    // The device's certificate admits it to the broker; the server is recognised by the copied roots.
    const trust = await TrustStore.open(device);
    assert.ok(trust.list().length > 0);
    const floor = await TimeFloor.open(device);
    const client = await connectMqtt({
      url: `mqtts://localhost:${server.ports.mqtt}`,
      clientId: `imsi-${IMSI}`,
      certificatePem: id.certificatePem + id.chainPem,
      keyPem: id.key.tlsKeyPem(),
      verifyServer: (pems) => void floor.validateServerChain(pems, trust.list()),
      timeoutMs: 15_000,
    });
    try {
      // QoS 1: the PUBACK proves the broker took the publish; a deadline turns a lost one into a failure, not a hang.
      const acked = client.publishAsync(`cellular/imsi-${IMSI}/up`, 'hello', { qos: 1 });
      await Promise.race([acked, sleep(15_000, undefined, { ref: false }).then(() => assert.fail('no PUBACK within 15 s'))]);
    } finally {
      client.end(true);
    }
  });

  it('the same IMSI again follows the template\'s override rule: fail exits non-zero with the server\'s message', async () => {
    const device = join(data, 'module-1-again');
    const r = await agent(['gateway', 'bootstrap', '--data', gw(), '--api', api, '--imsi', IMSI, '--template', 'cellular-strict', '--device-dir', device]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /HTTP 409 conflict/);
    assert.match(r.stderr, /override rule/);
    const list = JSON.parse(await cli(['cert', 'list', '--thing', `imsi-${IMSI}`, '--json'])) as { items: unknown[] };
    assert.equal(list.items.length, 1, 'the refused request issued nothing');
    assert.equal(await (await CertificateSlots.open(device, { recover: false })).current(), undefined, 'no identity was installed');
  });

  it('relays a device\'s own CSR (its key stays with it) and prints certificate and chain', async () => {
    const key = join(data, 'dev-own.key');
    const csr = join(data, 'dev-own.csr');
    const made = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=dev-own']);
    assert.equal(made.code, 0, made.stderr);
    const r = await agent(['gateway', 'bootstrap', '--data', gw(), '--api', api, '--imei', '49015420323751', '--template', 'cellular-imei', '--csr', csr]);
    // No template by that name: the server's 404 comes back as is.
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HTTP 404 not-found: no provisioning template named cellular-imei/);
    const ok = await agent(['gateway', 'bootstrap', '--data', gw(), '--api', api, '--imsi', '262011234567890', '--template', 'cellular', '--csr', csr]);
    assert.equal(ok.code, 0, ok.stderr);
    const [leaf] = Certificate.allFromPem(ok.stdout);
    assert.match(leaf!.subject(), /CN=imsi-262011234567890/);
    const certFile = join(data, 'dev-own.pem');
    writeFileSync(certFile, ok.stdout);
    const v = await run('openssl', ['verify', '-CAfile', join(data, 'gw-issued', 'ca.pem'), '-untrusted', certFile, certFile]);
    assert.match(v.stdout, /: OK/, v.stderr);
    const mod = await run('openssl', ['x509', '-in', certFile, '-noout', '-pubkey']);
    const pub = await run('openssl', ['pkey', '-in', key, '-pubout']);
    assert.equal(mod.stdout, pub.stdout, 'the certificate is for the key that stayed with the device');
  });

  it('a certificate that is not a gateway\'s is refused with a clear 403', async () => {
    await cli(['thing', 'create', 'plain-1']);
    const plain = join(data, 'plain-agent');
    const csr = join(data, 'plain-1.csr');
    assert.equal((await agent(['keygen', '--dir', plain, '--subject', 'CN=plain-1', '--csr', csr])).code, 0);
    await cli(['cert', 'sign', '--thing', 'plain-1', '--csr', csr, '--out', join(data, 'plain-issued')]);
    assert.equal((await agent(['install', '--dir', plain, '--cert', join(data, 'plain-issued', 'cert.pem'), '--chain', join(data, 'plain-issued', 'chain.pem')])).code, 0);
    assert.equal((await agent(['trust', 'add', join(data, 'gw-issued', 'ca.pem'), '--dir', plain])).code, 0);
    const r = await agent(['gateway', 'bootstrap', '--data', plain, '--api', api, '--imsi', '310410123456789', '--template', 'cellular', '--device-dir', join(data, 'module-2')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not a gateway's .*HTTP 403 forbidden/);
  });
});
