/**
 * Bootstrap by network identity against a real `certfleet serve`: a gateway
 * (a thing with certfleet.role=gateway and its certificate, made with the
 * CLI) asks over mutual TLS with curl for the certificate of a device whose
 * IMSI it asserts, with a CSR made by openssl. The certificate verifies to
 * the root; the thing is named from the template and carries the IMSI; a
 * non-gateway certificate gets 403, none 401, a bad IMSI or IMEI 400; the
 * same IMSI again follows the template's override rule; the audit log names
 * the gateway.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess, certfleetOk } from './helpers/cli.js';

let data: string;
let server: ServerProcess;
const IMSI = '262011234567890';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const cli = (args: string[]): Promise<string> => certfleetOk(data, args);

/** POST /api/v1/network-bootstrap with curl, as the holder of `credential` (a dir with cert.pem and key.pem), or nobody. */
async function bootstrap(credential: string | undefined, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const file = join(data, `body-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(body));
  const auth = credential ? ['--cert', join(credential, 'cert.pem'), '--key', join(credential, 'key.pem')] : [];
  const r = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', '--cacert', join(data, 'gw', 'ca.pem'), ...auth, '-H', 'Content-Type: application/json', '--data-binary', `@${file}`, `https://localhost:${server.ports.api}/api/v1/network-bootstrap`]);
  assert.equal(r.code, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), json: JSON.parse(r.stdout.slice(0, cut)) as Record<string, unknown> };
}

async function csr(name: string): Promise<string> {
  const key = join(data, `${name}.key`);
  const out = join(data, `${name}.csr`);
  const r = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', out, '-subj', `/CN=${name}`]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(out, 'utf8');
}

before(async () => {
  data = tempDir();
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  const policy = join(data, 'policy.json');
  writeFileSync(policy, JSON.stringify({ statements: [{ effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] }] }));
  await cli(['policy', 'create', 'cellular', '--file', policy]);
  const template = (override: string) => ({
    parameters: { IMSI: { type: 'string' }, Model: { type: 'string', default: 'm1' } },
    thing: { name: 'imsi-${parameters.IMSI}', attributes: { model: '${parameters.Model}' }, override },
    policies: ['cellular'],
    deviceConfiguration: { topic: 'cellular/imsi-${parameters.IMSI}' },
  });
  for (const [name, override] of [['cellular', 'do-nothing'], ['cellular-strict', 'fail'], ['cellular-replace', 'replace']]) {
    const file = join(data, `${name}.json`);
    writeFileSync(file, JSON.stringify(template(override!)));
    await cli(['template', 'create', name!, '--file', file]);
  }
  const imei = join(data, 'cellular-imei.json');
  writeFileSync(imei, JSON.stringify({ parameters: { IMEI: { type: 'string' } }, thing: { name: 'imei-${parameters.IMEI}' }, policies: ['cellular'] }));
  await cli(['template', 'create', 'cellular-imei', '--file', imei]);
  await cli(['thing', 'create', 'gw-1', '--attr', 'certfleet.role=gateway']);
  await cli(['cert', 'issue', '--thing', 'gw-1', '--out', join(data, 'gw')]);
  await cli(['thing', 'create', 'plain-1']);
  await cli(['cert', 'issue', '--thing', 'plain-1', '--out', join(data, 'plain')]);
});
after(async () => {
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

describe('bootstrap by network identity through a gateway', () => {
  it('a gateway bootstraps a device by IMSI: its certificate verifies, its thing carries the IMSI and the template', async () => {
    const r = await bootstrap(join(data, 'gw'), { networkIdentity: { type: 'imsi', value: IMSI }, csr: await csr('dev-a'), template: 'cellular', parameters: { Model: 'x2', IMSI: '999999999999999' } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.thingName, `imsi-${IMSI}`, 'the asserted IMSI, not a sent parameter, names the thing');
    assert.deepEqual(r.json.deviceConfiguration, { topic: `cellular/imsi-${IMSI}` });
    const cert = join(data, 'dev-a.pem');
    const chain = join(data, 'dev-a-chain.pem');
    writeFileSync(cert, r.json.certificatePem as string);
    writeFileSync(chain, r.json.chainPem as string);
    const v = await run('openssl', ['verify', '-x509_strict', '-CAfile', join(data, 'gw', 'ca.pem'), '-untrusted', chain, cert]);
    assert.match(v.stdout, /: OK/, v.stderr);
    const subject = await run('openssl', ['x509', '-in', cert, '-noout', '-subject']);
    assert.match(subject.stdout, new RegExp(`CN\\s*=\\s*imsi-${IMSI}`));
    const thing = JSON.parse(await cli(['thing', 'get', `imsi-${IMSI}`, '--json'])) as { attributes: Record<string, string> };
    assert.deepEqual(thing.attributes, { imsi: IMSI, model: 'x2' });
    const detail = JSON.parse(await cli(['cert', 'get', r.json.certificateId as string, '--json'])) as { policies: string[]; thing: string };
    assert.deepEqual([detail.thing, detail.policies], [`imsi-${IMSI}`, ['cellular']]);

    const log = JSON.parse(await cli(['audit-log', 'list', '--target', `certificate:${r.json.certificateId as string}`, '--json'])) as { items: Array<{ actor: string; action: string; details: Record<string, unknown> }> };
    const entry = log.items.find((e) => e.action === 'provisioning.network-bootstrap');
    assert.ok(entry, JSON.stringify(log.items));
    assert.match(entry.actor, /^gateway:[0-9a-f]{64}$/);
    assert.equal(entry.details.gatewayThing, 'gw-1');
  });

  it('the same IMSI again follows the override rule: do-nothing adds a certificate, replace rewrites, fail is 409', async () => {
    const again = await bootstrap(join(data, 'gw'), { networkIdentity: { type: 'imsi', value: IMSI }, csr: await csr('dev-a2'), template: 'cellular', parameters: { Model: 'ignored' } });
    assert.equal(again.status, 201, JSON.stringify(again.json));
    assert.equal(again.json.thingName, `imsi-${IMSI}`);
    let thing = JSON.parse(await cli(['thing', 'get', `imsi-${IMSI}`, '--json'])) as { attributes: Record<string, string> };
    assert.equal(thing.attributes.model, 'x2', 'do-nothing keeps the thing as it is');
    const strict = await bootstrap(join(data, 'gw'), { networkIdentity: { type: 'imsi', value: IMSI }, csr: await csr('dev-a3'), template: 'cellular-strict' });
    assert.equal(strict.status, 409, JSON.stringify(strict.json));
    assert.equal(strict.json.code, 'conflict');
    const replaced = await bootstrap(join(data, 'gw'), { networkIdentity: { type: 'imsi', value: IMSI }, csr: await csr('dev-a4'), template: 'cellular-replace', parameters: { Model: 'x3' } });
    assert.equal(replaced.status, 201, JSON.stringify(replaced.json));
    thing = JSON.parse(await cli(['thing', 'get', `imsi-${IMSI}`, '--json'])) as { attributes: Record<string, string> };
    assert.deepEqual(thing.attributes, { imsi: IMSI, model: 'x3' });
    const list = JSON.parse(await cli(['cert', 'list', '--thing', `imsi-${IMSI}`, '--json'])) as { items: unknown[] };
    assert.equal(list.items.length, 3, 'the refused request issued nothing');
  });

  it('a certificate without the gateway role gets 403, no certificate 401, a bad IMSI or IMEI 400', async () => {
    const body = { networkIdentity: { type: 'imsi', value: '310410123456789' }, csr: await csr('dev-b'), template: 'cellular' };
    const plain = await bootstrap(join(data, 'plain'), body);
    assert.equal(plain.status, 403, JSON.stringify(plain.json));
    assert.equal(plain.json.code, 'forbidden');
    assert.equal((await bootstrap(undefined, body)).status, 401);
    for (const networkIdentity of [
      { type: 'imsi', value: '2620112345' },
      { type: 'imsi', value: '26201123456789X' },
      { type: 'imei', value: '490154203237519' },
      { type: 'msisdn', value: '491701234567' },
    ]) {
      const bad = await bootstrap(join(data, 'gw'), { ...body, networkIdentity });
      assert.equal(bad.status, 400, JSON.stringify(networkIdentity));
      assert.match(bad.json.detail as string, /networkIdentity/);
    }
    const r = await bootstrap(join(data, 'gw'), { ...body, template: 'cellular-imei', networkIdentity: { type: 'imei', value: '49015420323751' } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const thing = JSON.parse(await cli(['thing', 'get', r.json.thingName as string, '--json'])) as { attributes: Record<string, string> };
    assert.equal(r.json.thingName, 'imei-490154203237518');
    assert.equal(thing.attributes.imei, '490154203237518', 'stored as the 15-digit IMEI with its check digit');
    // The same handset as an IMEISV (another software version) is the same identity: the same thing.
    const sv = await bootstrap(join(data, 'gw'), { ...body, template: 'cellular-imei', csr: await csr('dev-c'), networkIdentity: { type: 'imei', value: '4901542032375199' } });
    assert.equal(sv.status, 201, JSON.stringify(sv.json));
    assert.equal(sv.json.thingName, 'imei-490154203237518');
  });
});
