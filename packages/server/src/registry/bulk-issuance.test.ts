import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCsrPem, Certificate, generateKeyPair, parseName, type KeyAlgorithm } from '@certfleet/pki';
import { dropTestSchema, PG_URL, postgresUnreachable } from '../store/test-fixtures.js';
import { testNode, type TestNode } from '../testing/services.js';
import { tokenActor } from './actor.js';
import type { BatchFailed, BatchIssued, BatchItemResult } from './bulk-issuance.js';

function device(cn: string, alg: KeyAlgorithm = 'ec-p256') {
  const { privateKey, publicKey } = generateKeyPair(alg);
  return { csr: buildCsrPem({ subject: parseName(`CN=${cn}`), privateKey, publicKey }), spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

const issued = (r: BatchItemResult): BatchIssued => {
  assert.ok(!('error' in r), `expected a certificate, got ${JSON.stringify(r)}`);
  return r as BatchIssued;
};
const failed = (r: BatchItemResult): BatchFailed => {
  assert.ok('error' in r, `expected an error, got ${JSON.stringify(r).slice(0, 200)}`);
  return r as BatchFailed;
};

const actor = tokenActor('tok-batch');
const pgSchema = `certfleet_bulk_${randomBytes(6).toString('hex')}`;
const dialects = [
  { name: 'SQLite', open: () => testNode(), skip: undefined as string | undefined, cleanup: async () => {} },
  { name: 'PostgreSQL', open: () => testNode({ database: PG_URL, schema: pgSchema }), skip: (await postgresUnreachable()).skip, cleanup: () => dropTestSchema(pgSchema) },
];

for (const d of dialects) {
  describe(`bulk issuance on ${d.name}`, { skip: d.skip ?? false }, () => {
    let node: TestNode;
    before(async () => {
      node = await d.open();
      await node.s.store.createPolicy('telemetry', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'] }] } as never);
      await node.s.store.createGroup({ name: 'line-1', parent: null });
    });
    after(async () => {
      await node?.close();
      await d.cleanup();
    });

    it('issues a batch: every certificate stored before the answer, unique serials, things created, policies, groups, history and audit written', async () => {
      const devices = Array.from({ length: 700 }, (_, i) => ({ thing: `b1-${String(i).padStart(4, '0')}`, ...device(`ignored-${i}`) }));
      const before = (await node.s.store.verifyAuditLog()).entries;
      const r = await node.s.bulkIssuance.issue({ items: devices.map(({ thing, csr }) => ({ thing, csr, attributes: { line: '1' } })), policies: ['telemetry'], groups: ['line-1'], actor });
      assert.equal(r.items.length, 700);
      const certs = r.items.map(issued);
      assert.equal(new Set(certs.map((c) => c.serial)).size, 700);
      assert.ok(certs.every((c) => !c.reused));
      const root = Certificate.allFromPem(r.chainPem);
      assert.equal(root.length, 2);
      for (const [i, c] of certs.entries()) {
        assert.equal(c.thing, devices[i]!.thing);
        const stored = await node.s.store.getCertificate(c.certificateId);
        assert.ok(stored, 'stored before the answer');
        assert.equal(stored.thingName, c.thing);
        const cert = Certificate.fromPem(c.certificatePem);
        assert.ok(cert.der.equals(stored.der));
        assert.ok(cert.spki.equals(devices[i]!.spki), 'for the key of the CSR');
        assert.equal(stored.subject, `CN=${c.thing}`, 'the thing is the CN, whatever the CSR asked');
        assert.ok(await node.s.store.hasSerial(c.serial), 'journalled');
      }
      const one = certs[3]!;
      assert.deepEqual((await node.s.store.getThing(one.thing))?.attributes, { line: '1' });
      assert.deepEqual(await node.s.store.policiesOfTarget({ type: 'certificate', id: one.certificateId }), ['telemetry']);
      assert.deepEqual((await node.s.store.groupsOfThing(one.thing)).map((g) => g.name), ['line-1']);
      assert.deepEqual((await node.s.store.certificateHistory(one.certificateId)).map((h) => [h.status, h.actor]), [['active', actor.id]]);
      // Per device: thing.create, certificate.issue, policy.attach, group.add-thing, in device order, chain intact.
      const verification = await node.s.store.verifyAuditLog();
      assert.ok(verification.ok);
      assert.equal(verification.entries - before, 4 * 700);
      const page = await node.s.store.listAuditLog({ limit: 8, order: 'desc' });
      assert.deepEqual(page.items.slice(0, 4).map((e) => e.action).reverse(), ['thing.create', 'certificate.issue', 'policy.attach', 'group.add-thing']);
      assert.equal(page.items[2]!.target, `certificate:${certs[699]!.certificateId}`);
    });

    it('a bad CSR, a bad name or a duplicate thing fails its item only', async () => {
      const good = device('x');
      const other = device('y');
      const tampered = good.csr.replace(/(.{40})(.)/s, (_m, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
      const r = await node.s.bulkIssuance.issue({
        items: [
          { thing: 'b2-ok', csr: good.csr },
          { thing: 'b2-garbage', csr: 'not a csr' },
          { thing: 'b2-tampered', csr: tampered },
          { thing: 'bad name!', csr: other.csr },
          { thing: 'b2-ok', csr: other.csr },
          { thing: 'b2-weak', csr: device('w', 'ed25519').csr },
        ],
        actor,
      });
      issued(r.items[0]!);
      assert.equal(failed(r.items[1]!).error.code, 'malformed-pem');
      assert.ok(['malformed-der', 'malformed-csr', 'bad-signature', 'malformed-pem'].includes(failed(r.items[2]!).error.code));
      assert.equal(failed(r.items[3]!).error.code, 'bad-request');
      assert.equal(failed(r.items[4]!).error.code, 'conflict');
      assert.equal(r.items[5]!.thing, 'b2-weak');
      assert.equal(await node.s.store.getThing('b2-garbage'), undefined, 'a failed item creates no thing');
    });

    it('a batch sent again after its answer was lost gets the same certificates back, not new ones', async () => {
      const devices = Array.from({ length: 20 }, (_, i) => ({ thing: `b3-${i}`, csr: device('z').csr }));
      const first = (await node.s.bulkIssuance.issue({ items: devices, actor })).items.map(issued);
      const audited = (await node.s.store.verifyAuditLog()).entries;
      // Half the batch again plus ten new devices.
      const more = Array.from({ length: 10 }, (_, i) => ({ thing: `b3-new-${i}`, csr: device('n').csr }));
      const again = (await node.s.bulkIssuance.issue({ items: [...devices.slice(10), ...more], actor })).items.map(issued);
      assert.deepEqual(again.slice(0, 10).map((c) => [c.certificateId, c.serial, c.reused]), first.slice(10).map((c) => [c.certificateId, c.serial, true]));
      assert.ok(again.slice(10).every((c) => !c.reused));
      for (const d of devices) assert.equal((await node.s.store.listCertificates({ limit: 10, thing: d.thing })).items.length, 1);
      assert.equal((await node.s.store.verifyAuditLog()).entries - audited, 20, 'only the ten new devices are audited (thing + certificate)');
      // A new key for an existing thing is a new certificate: reuse is by key, not by name.
      const rekeyed = issued((await node.s.bulkIssuance.issue({ items: [{ thing: 'b3-0', csr: device('r').csr }], actor })).items[0]!);
      assert.equal(rekeyed.reused, false);
      assert.notEqual(rekeyed.certificateId, first[0]!.certificateId);
    });

    it('refuses the whole batch for an unknown policy or group, before journalling anything', async () => {
      const csr = device('p').csr;
      await assert.rejects(node.s.bulkIssuance.issue({ items: [{ thing: 'b4-1', csr }], policies: ['nope'], actor }), { code: 'not-found' });
      await assert.rejects(node.s.bulkIssuance.issue({ items: [{ thing: 'b4-1', csr }], groups: ['nope'], actor }), { code: 'not-found' });
      assert.equal(await node.s.store.getThing('b4-1'), undefined);
      await assert.rejects(node.s.bulkIssuance.issue({ items: [], actor }), { code: 'bad-request' });
    });
  });
}
