/**
 * Tenants selected by TLS SNI, end to end, against a real `certfleet serve`:
 * two tenants made with `certfleet tenant create`, each an isolated data set
 * on the node's one api, mqtt and http port. An operator of one sees nothing
 * of the other, and its token is refused under the other's server name. One
 * device certificate, of a CA made with openssl and registered sni-only in
 * both tenants, lands in the tenant whose server name the device sends
 * (MQTT.js: `mosquitto_pub` sends its -h host as SNI, and *.localhost does not
 * resolve here); a message published in one tenant never reaches a
 * subscriber of the same topic in the other. CRLs and OCSP of each tenant are
 * under /tenants/NAME/ on the http port; the node's own paths are unchanged.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type MqttClient } from 'mqtt';
import { certfleet, serve, tempDir, type ServerProcess } from './helpers/cli.js';

let data: string;
let work: string;
let server: ServerProcess;

const openssl = (args: string[], input?: string) =>
  execFileSync('openssl', args, { cwd: work, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) }).toString();

async function cli(args: string[]): Promise<unknown> {
  const r = await certfleet([...args, '--data', data, '--json']);
  assert.equal(r.code, 0, `certfleet ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface TenantCli {
  url: string;
  token: string;
  caFile: string;
  servername: string;
}
const tenantCli = (name: string) => JSON.parse(readFileSync(join(data, 'tenants', name, 'cli.json'), 'utf8')) as TenantCli;

/** curl to the api port as `servername` (SNI), verifying the server against `caFile`; returns the status and body. */
function curl(servername: string, caFile: string, token: string, path: string): { status: number; body: string } {
  const out = execFileSync('curl', [
    '-sS', '--resolve', `${servername}:${server.ports.api}:127.0.0.1`, '--cacert', caFile,
    '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}', `https://${servername}:${server.ports.api}${path}`,
  ]).toString();
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

const http = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${server.ports.http}${path}`, init);

/** A device connection through MQTT.js, sending `servername` as SNI and verifying that tenant's server certificate. */
function device(servername: string | undefined, ca: Buffer, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = connect({
      host: '127.0.0.1', port: server.ports.mqtt, protocol: 'mqtts', clientId, reconnectPeriod: 0, connectTimeout: 10_000,
      ...(servername ? { servername } : { servername: 'localhost' }),
      ca, cert: readFileSync(join(work, 'valve-1.pem')), key: readFileSync(join(work, 'valve-1.key')), rejectUnauthorized: true,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => { c.end(true); reject(err); });
    c.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

const subscribe = (c: MqttClient, topic: string) => new Promise<void>((resolve, reject) => c.subscribe(topic, { qos: 1 }, (err, granted) => (err ? reject(err) : granted?.[0]?.qos === 128 ? reject(new Error('refused')) : resolve())));
const publish = (c: MqttClient, topic: string, payload: string) => new Promise<void>((resolve, reject) => c.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
const end = (c: MqttClient) => new Promise<void>((resolve) => c.end(false, {}, () => resolve()));

function received(c: MqttClient): string[] {
  const got: string[] = [];
  c.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
  return got;
}

/** Webhook deliveries received, as `TENANT EVENT THING`: each tenant's webhooks post to its own path. */
const hooks: string[] = [];
let receiver: Server;

before(async () => {
  data = tempDir();
  work = tempDir('certfleet-tenants-');
  assert.equal((await certfleet(['init', '--data', data])).code, 0);
  server = await serve(data);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { data?: { thingName?: string } };
      hooks.push(`${req.url!.slice(1)} ${String(req.headers['x-certfleet-event'])} ${event.data?.thingName ?? ''}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  writeFileSync(
    join(work, 'telemetry.json'),
    JSON.stringify({
      statements: [
        { effect: 'allow', actions: ['connect'], resources: ['${thing.name}'] },
        { effect: 'allow', actions: ['publish', 'subscribe', 'receive'], resources: ['things/${thing.name}/#'] },
      ],
    }),
  );
});
after(async () => {
  receiver?.close();
  await server?.stop();
  for (const dir of [data, work]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tenants selected by TLS SNI', () => {
  it('creates two tenants live, each with its own root, admin token and cli.json naming its server name', async () => {
    const human = await certfleet(['tenant', 'create', 'acme', '--sni', 'a.localhost', '--data', data]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /created tenant acme \(SNI a\.localhost\)/);
    const a = tenantCli('acme');
    assert.ok(human.stdout.includes(a.token), 'the admin token is printed');
    assert.equal(a.servername, 'a.localhost');
    assert.equal(a.url, `https://localhost:${server.ports.api}`);
    assert.equal(statSync(join(data, 'tenants', 'acme', 'cli.json')).mode & 0o777, 0o600);

    const b = (await cli(['tenant', 'create', 'beta', '--sni', 'b.localhost', '--sni', 'B2.localhost'])) as { name: string; sniHosts: string[]; adminToken: string; publicUrl: string };
    assert.deepEqual(b.sniHosts, ['b.localhost', 'b2.localhost']);
    assert.equal(b.adminToken, tenantCli('beta').token);
    assert.equal(b.publicUrl, `http://localhost:${server.ports.http}/tenants/beta`);

    // A host another tenant has, a name taken, a bad name or host: refused, nothing made.
    for (const args of [['dup', '--sni', 'b2.localhost'], ['acme', '--sni', 'c.localhost'], ['Bad_Name', '--sni', 'c.localhost'], ['gamma', '--sni', '127.0.0.1']]) {
      const r = await certfleet(['tenant', 'create', args[0]!, ...args.slice(1), '--data', data]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, /HTTP (400|409)/);
    }
    const { items } = (await cli(['tenant', 'list'])) as { items: Array<{ name: string }> };
    assert.deepEqual(items.map((t) => t.name), ['acme', 'beta']);
  });

  it('serves each tenant its own certificate on the shared api port, chained to its own root', () => {
    for (const [tenant, host] of [['acme', 'a.localhost'], ['beta', 'b2.localhost']] as const) {
      const out = openssl(['s_client', '-connect', `127.0.0.1:${server.ports.api}`, '-servername', host, '-CAfile', tenantCli(tenant).caFile, '-verify_hostname', host, '-verify_return_error'], '');
      assert.match(out, /Verify return code: 0 \(ok\)/, `${tenant}: ${out}`);
      assert.match(out, new RegExp(`certfleet ${tenant} Issuing CA`));
    }
    // Without SNI: the node's own certificate, as before tenants.
    const plain = openssl(['s_client', '-connect', `127.0.0.1:${server.ports.api}`, '-CAfile', join(data, 'ca.pem'), '-verify_return_error'], '');
    assert.match(plain, /Verify return code: 0 \(ok\)/);
    assert.match(plain, /CN ?= ?certfleet Issuing CA/);
  });

  it("keeps each tenant's things and CAs to itself; a token is valid only under its own tenant's server name", async () => {
    await cli(['--tenant', 'acme', 'thing', 'create', 'pump-a']);
    process.env.CERTFLEET_TENANT = 'beta';
    try {
      await cli(['thing', 'create', 'pump-b']);
    } finally {
      delete process.env.CERTFLEET_TENANT;
    }
    const things = async (tenant?: string) => ((await cli([...(tenant ? ['--tenant', tenant] : []), 'thing', 'list'])) as { items: Array<{ name: string }> }).items.map((t) => t.name);
    assert.deepEqual(await things('acme'), ['pump-a']);
    assert.deepEqual(await things('beta'), ['pump-b']);
    assert.deepEqual(await things(), []);
    const cas = async (tenant?: string) => ((await cli([...(tenant ? ['--tenant', tenant] : []), 'ca', 'list'])) as { items: Array<{ id: string; subject: string }> }).items;
    const [ca, cb, cd] = [await cas('acme'), await cas('beta'), await cas()];
    assert.ok(ca.every((c) => /certfleet acme/.test(c.subject)) && cb.every((c) => /certfleet beta/.test(c.subject)));
    assert.equal(new Set([...ca, ...cb, ...cd].map((c) => c.id)).size, ca.length + cb.length + cd.length, 'no CA is shared');

    const a = tenantCli('acme');
    const b = tenantCli('beta');
    assert.equal(curl('a.localhost', a.caFile, a.token, '/api/v1/things').status, 200);
    // acme's token under beta's server name, and under none: 401, not another tenant's data.
    const cross = curl('b.localhost', b.caFile, a.token, '/api/v1/things');
    assert.equal(cross.status, 401, cross.body);
    assert.equal((JSON.parse(cross.body) as { code: string }).code, 'unauthorized');
    assert.equal(curl('localhost', join(data, 'ca.pem'), a.token, '/api/v1/things').status, 401);
    // A tenant cannot manage tenants: the route is the node's (default tenant's) alone.
    assert.equal(curl('a.localhost', a.caFile, a.token, '/api/v1/tenants').status, 404);
    // A server name no tenant has is the default tenant.
    const cli0 = JSON.parse(readFileSync(join(data, 'cli.json'), 'utf8')) as { token: string };
    const other = execFileSync('curl', ['-sS', '-k', '--resolve', `other.localhost:${server.ports.api}:127.0.0.1`, '-H', `authorization: Bearer ${cli0.token}`, `https://other.localhost:${server.ports.api}/api/v1/tenants`]).toString();
    assert.deepEqual((JSON.parse(other) as { items: Array<{ name: string }> }).items.map((t) => t.name), ['acme', 'beta']);
  });

  it('admits one device certificate of an sni-only CA in the tenant whose server name it sends, and keeps MQTT traffic apart', async () => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'line.key', '-out', 'line.pem', '-subj', '/O=Contract Manufacturing/CN=Line 9 CA', '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'valve-1.key', '-out', 'valve-1.csr', '-subj', '/CN=valve-1']);
    writeFileSync(join(work, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    openssl(['x509', '-req', '-in', 'valve-1.csr', '-CA', 'line.pem', '-CAkey', 'line.key', '-CAcreateserial', '-days', '30', '-sha256', '-extfile', 'leaf.ext', '-out', 'valve-1.pem']);
    const ids: Record<string, string> = {};
    for (const t of ['acme', 'beta']) {
      const ca = (await cli(['--tenant', t, 'ca', 'register', '--cert', join(work, 'line.pem'), '--mode', 'sni-only', '--name', 'line-9'])) as { registrationMode: string };
      assert.equal(ca.registrationMode, 'sni-only');
      await cli(['--tenant', t, 'policy', 'create', 'telemetry', '--file', join(work, 'telemetry.json')]);
      await cli(['--tenant', t, 'thing', 'create', 'valve-1']);
      const cert = (await cli(['--tenant', t, 'cert', 'register', '--cert', join(work, 'valve-1.pem'), '--ca-cert', join(work, 'line.pem'), '--thing', 'valve-1'])) as { id: string; status: string };
      assert.equal(cert.status, 'active');
      await cli(['--tenant', t, 'policy', 'attach', 'telemetry', '--cert', cert.id]);
      await cli(['--tenant', t, 'webhook', 'create', '--url', `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/${t}`, '--events', 'thing.connected,thing.disconnected']);
      ids[t] = cert.id;
    }
    assert.equal(ids.acme, ids.beta, 'the same certificate (same fingerprint) in both tenants');

    const caA = readFileSync(tenantCli('acme').caFile);
    const caB = readFileSync(tenantCli('beta').caFile);
    // Only in acme so far: acme records the connection (thing.connected, webhook), beta knows nothing of it.
    const inA = await device('a.localhost', caA, 'valve-1');
    for (let i = 0; !hooks.some((h) => h.startsWith('acme thing.connected valve-1')); i++) {
      assert.ok(i < 100, `acme announces the connection: ${hooks.join('; ')}`);
      await sleep(100);
    }
    await sleep(300);
    assert.deepEqual(hooks.filter((h) => h.startsWith('beta')), [], 'beta has no connection of it');

    // The same client id in both tenants at once: separate brokers, so neither takes the other's session over.
    const inB = await device('b2.localhost', caB, 'valve-1');
    for (let i = 0; !hooks.some((h) => h.startsWith('beta thing.connected valve-1')); i++) {
      assert.ok(i < 100, `beta announces its own connection: ${hooks.join('; ')}`);
      await sleep(100);
    }
    assert.equal(hooks.filter((h) => h.startsWith('acme thing.connected')).length, 1, 'acme saw one connection only');
    const gotA = received(inA);
    const gotB = received(inB);
    await subscribe(inA, 'things/valve-1/cmd');
    await subscribe(inB, 'things/valve-1/cmd');
    await publish(inA, 'things/valve-1/cmd', 'from-acme');
    await publish(inB, 'things/valve-1/cmd', 'from-beta');
    await sleep(500);
    assert.deepEqual(gotA, ['things/valve-1/cmd from-acme']);
    assert.deepEqual(gotB, ['things/valve-1/cmd from-beta']);
    assert.equal(inA.connected && inB.connected, true);
    await end(inA);
    await end(inB);

    // Without a tenant's server name it is the default tenant's device, which does not know it: refused.
    await assert.rejects(device(undefined, readFileSync(join(data, 'ca.pem')), 'valve-1'));
  });

  it("publishes each tenant's CRL and OCSP under /tenants/NAME/ on the http port, and keeps the node's own paths", async () => {
    const out = join(work, 'acme-dev');
    await cli(['--tenant', 'acme', 'thing', 'create', 'meter-1']);
    const issued = (await cli(['--tenant', 'acme', 'cert', 'issue', '--thing', 'meter-1', '--out', out])) as { id: string; serial: string; issuerId: string };
    const text = openssl(['x509', '-in', join(out, 'cert.pem'), '-noout', '-text']);
    const base = `http://localhost:${server.ports.http}/tenants/acme`;
    assert.ok(text.includes(`${base}/crl/`), `CRL distribution point under the tenant: ${text}`);
    assert.ok(text.includes(`${base}/ocsp`), 'OCSP location under the tenant');
    await cli(['--tenant', 'acme', 'cert', 'revoke', issued.id, '--reason', 'keyCompromise']);

    const crlUrl = /URI:(http:\/\/\S+\/crl\/\S+\.crl)/.exec(text)![1]!;
    const crl = await fetch(crlUrl);
    assert.equal(crl.status, 200);
    assert.equal(crl.headers.get('content-type'), 'application/pkix-crl');
    writeFileSync(join(work, 'acme.crl'), Buffer.from(await crl.arrayBuffer()));
    const crlText = openssl(['crl', '-inform', 'DER', '-in', 'acme.crl', '-noout', '-text']);
    assert.match(crlText, /certfleet acme Issuing CA/);
    assert.ok(crlText.toUpperCase().includes(issued.serial.toUpperCase().replace(/^0+/, '')), 'the revoked serial is listed');
    // The issuer is acme's: beta and the node know nothing of it.
    const path = new URL(crlUrl).pathname.replace('/tenants/acme', '');
    assert.equal((await http(`/tenants/beta${path}`)).status, 404);
    assert.equal((await http(path)).status, 404);
    assert.equal((await http(`/tenants/nobody${path}`)).status, 404);

    const ocsp = openssl(['ocsp', '-issuer', join(out, 'chain.pem'), '-cert', join(out, 'cert.pem'), '-url', `${base}/ocsp`, '-CAfile', join(out, 'ca.pem'), '-no_nonce']);
    assert.match(ocsp, /cert\.pem: revoked/);
    // Trust bundles: each tenant's own root; the node's at the path DESIGN.md fixes.
    assert.equal(await (await http('/tenants/acme/trust-bundle.pem')).text(), readFileSync(tenantCli('acme').caFile, 'utf8'));
    assert.equal(await (await http('/trust-bundle.pem')).text(), readFileSync(join(data, 'ca.pem'), 'utf8'));
  });

  it('deletes a tenant (its server names then select the node), and reopens the others after a restart', async () => {
    const b = tenantCli('beta');
    assert.deepEqual(await cli(['tenant', 'delete', 'beta']), { name: 'beta', deleted: true, purged: false });
    assert.deepEqual(((await cli(['tenant', 'list'])) as { items: Array<{ name: string }> }).items.map((t) => t.name), ['acme']);
    const gone = execFileSync('curl', ['-sS', '-k', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `b.localhost:${server.ports.api}:127.0.0.1`, '-H', `authorization: Bearer ${b.token}`, `https://b.localhost:${server.ports.api}/api/v1/things`]).toString();
    assert.equal(gone, '401');
    assert.equal((await http('/tenants/beta/trust-bundle.pem')).status, 404);
    const missing = await certfleet(['tenant', 'delete', 'beta', '--data', data]);
    assert.match(missing.stderr, /HTTP 404/);

    await server.stop();
    server = await serve(data);
    assert.equal(tenantCli('acme').url, `https://localhost:${server.ports.api}`, "the tenant's cli.json follows the new port");
    assert.deepEqual(((await cli(['--tenant', 'acme', 'thing', 'list'])) as { items: Array<{ name: string }> }).items.map((t) => t.name).sort(), ['meter-1', 'pump-a', 'valve-1']);
    const inA = await device('a.localhost', readFileSync(tenantCli('acme').caFile), 'valve-1');
    await end(inA);
    // beta's data stayed (no --purge): the name is not free until it is removed.
    const again = await certfleet(['tenant', 'create', 'beta', '--sni', 'b.localhost', '--data', data]);
    assert.match(again.stderr, /earlier tenant beta/);
  });
});
