/**
 * A CA made outside certfleet, end to end, against a real `certfleet serve`
 * with openssl and the mosquitto clients: the CA and its verification
 * certificate are made with openssl, the registration code comes from the
 * CLI, the CA is registered with proof of possession and a JIT template, and
 * a device certificate made with openssl is admitted on its first connection
 * (JITP). A second CA registered sni-only, without proof, with a device
 * certificate registered by `certfleet cert register`, admitted; its
 * unregistered sibling is refused. certfleet never signs for either CA
 * (issuance 409, CRL 404, OCSP 'unauthorized').
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

const HAVE_MOSQUITTO = spawnSync('mosquitto_pub', ['--help']).status !== null;
let data: string;
let work: string;
let server: ServerProcess;
let serverRoot: string;

const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** An outside root CA, as a factory would make it: `openssl req -x509` with CA extensions. */
function makeCa(name: string, subject: string): void {
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', subject, '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A certificate for `cn` signed by the CA `ca` (key made here too), with the extensions of a device identity. */
function makeLeaf(ca: string, name: string, cn: string): void {
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(join(work, `${name}.ext`), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

async function cli(args: string[]): Promise<unknown> {
  const r = await certfleet([...args, '--data', data, '--json']);
  assert.equal(r.code, 0, `certfleet ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function publish(name: string, clientId: string): { status: number; output: string } {
  const r = spawnSync(
    'mosquitto_pub',
    ['--cafile', serverRoot, '--cert', join(work, `${name}.pem`), '--key', join(work, `${name}.key`), '-h', 'localhost', '-p', String(server.ports.mqtt), '-i', clientId, '-t', `things/${clientId}/temp`, '-m', '21.5', '-q', '1'],
    { timeout: 15_000 },
  );
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

before(async () => {
  if (!HAVE_MOSQUITTO) return;
  data = tempDir();
  work = tempDir('certfleet-outside-');
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  serverRoot = (JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { caFile: string }).caFile;
  writeFileSync(
    join(work, 'telemetry.json'),
    JSON.stringify({
      statements: [
        { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
        { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['things/${thing.name}/#'] },
      ],
    }),
  );
  await cli(['policy', 'create', 'telemetry', '--file', join(work, 'telemetry.json')]);
});
after(async () => {
  await server?.stop();
  for (const dir of [data, work]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('CAs made outside certfleet', { skip: HAVE_MOSQUITTO ? false : 'mosquitto clients are not installed' }, () => {
  let factoryId: string;

  it('registers an openssl CA with proof of possession; a spent code and the same CA again are refused', async () => {
    makeCa('factory', '/O=Acme/CN=Acme Factory CA');
    const { registrationCode } = (await cli(['ca', 'registration-code'])) as { registrationCode: string };
    assert.match(registrationCode, /^[0-9a-f]{32}$/);
    makeLeaf('factory', 'verification', registrationCode);

    const template = JSON.stringify({ thingName: '${cert.subject.cn}', attributes: { maker: 'acme' }, policies: ['telemetry'] });
    const ca = (await cli([
      'ca', 'register', '--cert', join(work, 'factory.pem'), '--verification-cert', join(work, 'verification.pem'),
      '--name', 'acme-factory', '--auto-register', '--template', template,
    ])) as { id: string; kind: string; registrationMode: string; autoRegistration: boolean; subject: string };
    assert.deepEqual([ca.kind, ca.registrationMode, ca.autoRegistration, ca.subject], ['external', 'default', true, 'CN=Acme Factory CA,O=Acme']);
    factoryId = ca.id;

    // The same verification certificate again: its code is spent.
    const spent = await certfleet(['ca', 'register', '--cert', join(work, 'factory.pem'), '--verification-cert', join(work, 'verification.pem'), '--data', data]);
    assert.notEqual(spent.code, 0);
    assert.match(spent.stderr, /registration code/);
    // A fresh proof for a CA already registered: 409.
    const { registrationCode: second } = (await cli(['ca', 'registration-code'])) as { registrationCode: string };
    makeLeaf('factory', 'verification2', second);
    const twice = await certfleet(['ca', 'register', '--cert', join(work, 'factory.pem'), '--verification-cert', join(work, 'verification2.pem'), '--data', data]);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /already registered/);
    // Without proof, in default mode: refused.
    makeCa('stranger', '/CN=Stranger CA');
    const noProof = await certfleet(['ca', 'register', '--cert', join(work, 'stranger.pem'), '--data', data]);
    assert.notEqual(noProof.code, 0);
    assert.match(noProof.stderr, /verificationCertificate is required/);
  });

  it('admits a device certificate made with openssl on its first connection (JITP)', async () => {
    makeLeaf('factory', 'sensor-1', 'sensor-1');
    const first = publish('sensor-1', 'sensor-1');
    assert.equal(first.status, 0, first.output);
    const { items } = (await cli(['cert', 'list', '--thing', 'sensor-1'])) as { items: Array<{ status: string; profile: string; issuerId: string }> };
    assert.equal(items.length, 1);
    assert.deepEqual([items[0]!.status, items[0]!.profile, items[0]!.issuerId], ['active', 'jitp', factoryId]);
    assert.equal(((await cli(['thing', 'get', 'sensor-1'])) as { attributes: Record<string, string> }).attributes.maker, 'acme');
    // Known from now on: the second connection is admitted too.
    assert.equal(publish('sensor-1', 'sensor-1').status, 0);
  });

  it('admits a device certificate registered with `certfleet cert register` under an sni-only CA, and refuses its unregistered sibling', async () => {
    makeCa('contract', '/O=Contract Manufacturing/CN=Line 7 CA');
    const ca = (await cli(['ca', 'register', '--cert', join(work, 'contract.pem'), '--mode', 'sni-only', '--name', 'line-7'])) as { id: string; registrationMode: string; autoRegistration: boolean };
    assert.deepEqual([ca.registrationMode, ca.autoRegistration], ['sni-only', false]);

    makeLeaf('contract', 'valve-1', 'valve-1');
    await cli(['thing', 'create', 'valve-1']);
    const cert = (await cli(['cert', 'register', '--cert', join(work, 'valve-1.pem'), '--ca-cert', join(work, 'contract.pem'), '--thing', 'valve-1'])) as { id: string; status: string; issuerId: string; thing: string };
    assert.deepEqual([cert.status, cert.issuerId, cert.thing], ['active', ca.id, 'valve-1']);
    await cli(['policy', 'attach', 'telemetry', '--cert', cert.id]);
    const ok = publish('valve-1', 'valve-1');
    assert.equal(ok.status, 0, ok.output);

    makeLeaf('contract', 'valve-2', 'valve-2');
    assert.notEqual(publish('valve-2', 'valve-2').status, 0, 'a certificate of that CA that nobody registered is refused');
    const again = await certfleet(['cert', 'register', '--cert', join(work, 'valve-1.pem'), '--data', data]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already registered/);
    // A device certificate whose CA nobody registered.
    makeLeaf('stranger', 'stray', 'stray');
    const stray = await certfleet(['cert', 'register', '--cert', join(work, 'stray.pem'), '--data', data]);
    assert.notEqual(stray.code, 0);
    assert.match(stray.stderr, /no registered CA signed this certificate/);
  });

  it('never signs for an outside CA: issuance is refused with 409, its CRL is 404, OCSP answers unauthorized', async () => {
    const cfg = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { url: string; token: string; caFile: string };
    const issue = spawnSync('curl', [
      '-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', cfg.caFile, '-H', `authorization: Bearer ${cfg.token}`, '-H', 'content-type: application/json',
      '-d', JSON.stringify({ issuer: 'acme-factory', commonName: 'x' }), `${cfg.url}/api/v1/certificates/generate`,
    ]);
    assert.equal(issue.stdout.toString(), '409');
    const crl = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://localhost:${server.ports.http}/crl/${factoryId}.crl`]);
    assert.equal(crl.stdout.toString(), '404');
    // RFC 6960 §2.3: not authoritative for that CA, so 'unauthorized', never a response signed with a key certfleet does not have.
    const ocsp = spawnSync('openssl', ['ocsp', '-issuer', join(work, 'factory.pem'), '-cert', join(work, 'sensor-1.pem'), '-url', `http://localhost:${server.ports.http}/ocsp`, '-no_nonce'], { timeout: 15_000 });
    assert.match(`${ocsp.stdout}${ocsp.stderr}`, /unauthorized/i);
  });
});
