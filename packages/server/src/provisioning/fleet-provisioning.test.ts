import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName } from '@certfleet/pki';
import { tokenActor } from '../registry/actor.js';
import { testNode, type TestNode } from '../testing/services.js';
import { FleetProvisioning, OWNERSHIP_TOKEN_TTL_MS, type Caller } from './fleet-provisioning.js';
import { callHook, type HookCaller, type HookRequest } from './hook.js';
import { rejectionOf } from './rejections.js';

/* The device side of fleet provisioning, on a real store, signer and registry, with a clock and a hook of our own. */

const admin = tokenActor('tok-test');
let node: TestNode;
let fp: FleetProvisioning;
let clock = new Date();
let hook: HookCaller = async () => ({ parameterOverrides: {} });
const hookCalls: HookRequest[] = [];
let claim: Caller;

function csr(cn: string) {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  return { pem: buildCsrPem({ subject: parseName(`CN=${cn}`), publicKey, privateKey }), publicKey };
}

/** The rejected answer the device would get for what `p` rejects with. */
async function rejected(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    return rejectionOf(err);
  }
  assert.fail('expected a rejection');
}

async function newClaim(template: string): Promise<Caller> {
  const c = await node.s.fleet.claims.create(admin, { template });
  return { certificateId: c.record.id, clientId: `claim-${template}` };
}

before(async () => {
  node = await testNode();
  const s = node.s;
  await s.policies.create(admin, 'telemetry', { statements: [{ effect: 'allow', actions: ['publish'], resources: ['dt/${thing.name}/#'] }] });
  await s.things.createGroup(admin, { name: 'meters' });
  await s.fleet.templates.create(admin, 'meter', {
    parameters: { SerialNumber: { type: 'string' }, Model: { type: 'string', default: 'm1' } },
    thing: { name: 'meter-${parameters.SerialNumber}', attributes: { model: '${parameters.Model}' }, groups: ['meters'], override: 'fail' },
    policies: ['telemetry'],
    deviceConfiguration: { topic: 'dt/meter-${parameters.SerialNumber}' },
  });
  fp = new FleetProvisioning({
    store: s.store,
    issuance: s.issuance,
    templates: s.fleet.templates,
    bus: s.bus,
    now: () => clock,
    hook: (h, req) => {
      hookCalls.push(req);
      return hook(h, req);
    },
  });
  claim = await newClaim('meter');
});
after(() => node.close());

describe('fleet provisioning by claim', () => {
  it('create-from-csr, then provision: thing, attributes, group, policy, audit, one transaction', async () => {
    const { pem, publicKey } = csr('factory-cn');
    const created = await fp.createFromCsr(claim, { certificateSigningRequest: pem });
    assert.match(created.certificateOwnershipToken, /^[A-Za-z0-9_-]{43}$/);
    const cert = Certificate.fromPem(created.certificatePem);
    assert.ok(cert.publicKey.equals(publicKey), 'the certificate certifies the CSR key');
    const record = await node.s.store.getCertificate(created.certificateId);
    assert.deepEqual([record?.status, record?.thingName], ['active', null]);

    const provisioned = await fp.provision(claim, 'meter', { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: 'A1' } });
    assert.deepEqual(provisioned, { thingName: 'meter-A1', deviceConfiguration: { topic: 'dt/meter-A1' } });
    assert.deepEqual((await node.s.store.getThing('meter-A1'))?.attributes, { model: 'm1' });
    assert.equal((await node.s.store.getCertificate(created.certificateId))?.thingName, 'meter-A1');
    assert.deepEqual(await node.s.store.policiesOfTarget({ type: 'certificate', id: created.certificateId }), ['telemetry']);
    assert.deepEqual((await node.s.store.groupsOfThing('meter-A1')).map((g) => g.name), ['meters']);
    const log = await node.s.store.listAuditLog({ limit: 20, actor: `claim:${claim.certificateId}` });
    assert.deepEqual(log.items.map((e) => e.action).sort(), ['certificate.issue', 'provisioning.provision']);

    // The token is spent: InvalidToken, whoever tries again.
    const again = await rejected(fp.provision(claim, 'meter', { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: 'A2' } }));
    assert.deepEqual([again.statusCode, again.errorCode], [403, 'InvalidToken']);
    assert.match(again.errorMessage, /already used/);
  });

  it('refuses an expired token, another claim\'s token, a caller that is no claim, another template', async () => {
    const created = await fp.createFromCsr(claim, { certificateSigningRequest: csr('x').pem });
    const body = { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: 'late' } };
    const other = await newClaim('meter');
    assert.deepEqual((await rejected(fp.provision(other, 'meter', body))).errorCode, 'InvalidToken');
    const device = { certificateId: created.certificateId, clientId: 'device' };
    assert.deepEqual(await rejected(fp.provision(device, 'meter', body)), { statusCode: 403, errorCode: 'AccessDenied', errorMessage: 'only a claim certificate may ask for this' });
    assert.equal((await rejected(fp.provision(claim, 'other', body))).errorCode, 'AccessDenied');

    const saved = clock;
    clock = new Date(saved.getTime() + OWNERSHIP_TOKEN_TTL_MS);
    try {
      const expired = await rejected(fp.provision(claim, 'meter', body));
      assert.deepEqual([expired.statusCode, expired.errorCode], [403, 'InvalidToken']);
      assert.match(expired.errorMessage, /expired/);
    } finally {
      clock = saved;
    }
    // One ms before the hour it still works.
    clock = new Date(saved.getTime() + OWNERSHIP_TOKEN_TTL_MS - 1);
    try {
      assert.equal((await fp.provision(claim, 'meter', body)).thingName, 'meter-late');
    } finally {
      clock = saved;
    }
  });

  it('answers bad requests 400 and a deleted template 404, and spends no token doing so', async () => {
    assert.deepEqual((await rejected(fp.createFromCsr(claim, {}))).errorCode, 'InvalidPayload');
    assert.deepEqual((await rejected(fp.createFromCsr(claim, { certificateSigningRequest: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }))).errorCode, 'InvalidCsr');
    assert.deepEqual((await rejected(fp.provision(claim, 'meter', { parameters: {} }))).errorCode, 'InvalidPayload');
    const created = await fp.createFromCsr(claim, { certificateSigningRequest: csr('y').pem });
    const missing = await rejected(fp.provision(claim, 'meter', { certificateOwnershipToken: created.certificateOwnershipToken }));
    assert.deepEqual([missing.statusCode, missing.errorCode], [400, 'InvalidPayload']);
    assert.match(missing.errorMessage, /SerialNumber is required/);

    await node.s.fleet.templates.create(admin, 'doomed', { thing: { name: '${cert.subject.cn}' } });
    const doomed = await newClaim('doomed');
    const c2 = await fp.createFromCsr(doomed, { certificateSigningRequest: csr('z').pem });
    await node.s.fleet.templates.delete(admin, 'doomed');
    const gone = await rejected(fp.provision(doomed, 'doomed', { certificateOwnershipToken: c2.certificateOwnershipToken }));
    assert.deepEqual([gone.statusCode, gone.errorCode], [404, 'NotFound']);
    // The unspent token still works for what it was issued for.
    assert.equal((await fp.provision(claim, 'meter', { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: 'B1' } })).thingName, 'meter-B1');
  });

  it('refuses to provision onto an existing thing under override "fail", and rolls back', async () => {
    const created = await fp.createFromCsr(claim, { certificateSigningRequest: csr('dup').pem });
    const r = await rejected(fp.provision(claim, 'meter', { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: 'A1' } }));
    assert.deepEqual([r.statusCode, r.errorCode], [409, 'ResourceConflict']);
    assert.equal((await node.s.store.getOwnershipToken(createHash('sha256').update(created.certificateOwnershipToken).digest('hex')))?.consumedAt, null);
    assert.equal((await node.s.store.getCertificate(created.certificateId))?.thingName, null);
  });

  it('create: a key made here comes back once with its certificate', async () => {
    const created = await fp.createKeysAndCertificate(claim, {});
    assert.ok(created.privateKey);
    assert.ok(createPublicKey(created.privateKey).equals(Certificate.fromPem(created.certificatePem).publicKey));
  });

  it('asks the pre-provisioning hook, which may override parameters or refuse', async () => {
    await node.s.fleet.templates.create(admin, 'hooked', {
      parameters: { SerialNumber: { type: 'string' } },
      thing: { name: 'hooked-${parameters.SerialNumber}' },
      preProvisioningHook: { url: 'https://hook.invalid/', timeoutMs: 200 },
    });
    const hooked = await newClaim('hooked');
    const provision = async (serial: string) => {
      const c = await fp.createFromCsr(hooked, { certificateSigningRequest: csr(serial).pem });
      return fp.provision({ ...hooked, clientId: 'dev-client' }, 'hooked', { certificateOwnershipToken: c.certificateOwnershipToken, parameters: { SerialNumber: serial } });
    };
    hook = async () => ({ parameterOverrides: { SerialNumber: 'renamed' } });
    assert.equal((await provision('h1')).thingName, 'hooked-renamed');
    const call = hookCalls.at(-1)!;
    assert.deepEqual([call.templateName, call.parameters, call.clientId, call.claimCertificateId], ['hooked', { SerialNumber: 'h1' }, 'dev-client', hooked.certificateId]);
    assert.match(call.certificatePem, /BEGIN CERTIFICATE/);

    hook = callHook; // the real one, against https://hook.invalid/: unreachable
    const r = await rejected(provision('h2'));
    assert.deepEqual([r.statusCode, r.errorCode], [403, 'AccessDenied']);
    assert.match(r.errorMessage, /pre-provisioning hook refused/);
    assert.equal(await node.s.store.getThing('hooked-h2'), undefined);
  });

  it('sweeps the certificates of tokens that expired unspent, and purges spent tokens', async () => {
    const unspent = await fp.createFromCsr(claim, { certificateSigningRequest: csr('abandoned').pem });
    const saved = clock;
    clock = new Date(saved.getTime() + OWNERSHIP_TOKEN_TTL_MS + 1);
    try {
      const result = await fp.sweep();
      assert.ok(result.deleted >= 1, JSON.stringify(result));
      assert.ok(result.purged >= 1, JSON.stringify(result));
      assert.equal(await node.s.store.getCertificate(unspent.certificateId), undefined);
      const log = await node.s.store.listAuditLog({ limit: 100, target: `certificate:${unspent.certificateId}` });
      assert.ok(log.items.some((e) => e.action === 'certificate.discard-unprovisioned' && e.actor === 'system'));
      assert.deepEqual(await fp.sweep(), { deleted: 0, kept: 0, purged: 0 });
    } finally {
      clock = saved;
    }
    // Provisioned certificates are untouched.
    assert.ok(await node.s.store.getThing('meter-A1'));
  });
});

describe('the pre-provisioning hook over HTTP', () => {
  let server: Server;
  let answer: (res: ServerResponse) => void = (res) => res.end('{}');
  let url = '';
  const req: HookRequest = { claimCertificateId: 'c', certificateId: 'd', certificatePem: 'pem', templateName: 't', parameters: { A: '1' }, clientId: 'x' };
  let received: unknown;

  before(async () => {
    server = createServer((rq, res) => {
      let body = '';
      rq.on('data', (d: Buffer) => (body += d.toString()));
      rq.on('end', () => {
        received = JSON.parse(body);
        answer(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const cases: Array<[string, (res: ServerResponse) => void, RegExp | { SerialNumber: string }]> = [
    ['a yes with overrides', (res) => res.end(JSON.stringify({ allowProvisioning: true, parameterOverrides: { SerialNumber: 'S' } })), { SerialNumber: 'S' }],
    ['a no', (res) => res.end(JSON.stringify({ allowProvisioning: false })), /allowProvisioning is not true/],
    ['garbage', (res) => res.end('<html>'), /not JSON/],
    ['an HTTP error', (res) => { res.statusCode = 500; res.end('{"allowProvisioning":true}'); }, /HTTP 500/],
    ['a non-string override', (res) => res.end(JSON.stringify({ allowProvisioning: true, parameterOverrides: { n: 1 } })), /parameterOverrides\.n/],
    ['silence', () => {}, /no answer within 300 ms/],
  ];
  for (const [name, respond, expected] of cases) {
    it(`takes ${name} as ${expected instanceof RegExp ? 'a refusal' : 'a yes'}`, async () => {
      answer = respond;
      const call = callHook({ url, timeoutMs: 300 }, req);
      if (expected instanceof RegExp) {
        const r = await rejected(call);
        assert.deepEqual([r.statusCode, r.errorCode], [403, 'AccessDenied']);
        assert.match(r.errorMessage, expected);
      } else assert.deepEqual((await call).parameterOverrides, expected);
      assert.deepEqual(received, req);
    });
  }
});
