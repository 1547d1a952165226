import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ExternalCaRegistration } from './registration-codes.js';
import { allBytes, at, caFixture, rejectsWith, T0 } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';
import type { Store } from './store.js';

const HOUR = 3_600_000;
const hash = () => randomBytes(32).toString('hex');

async function newCode(s: Store, tokenId = 'token:a', createdAt = T0): Promise<string> {
  const codeHash = hash();
  await s.insertRegistrationCode({ codeHash, tokenId, createdAt, expiresAt: new Date(createdAt.getTime() + HOUR) });
  return codeHash;
}

function registration(overrides: Partial<ExternalCaRegistration> = {}, createdAt = at(60_000)): ExternalCaRegistration {
  const der = allBytes();
  return {
    ca: caFixture({ kind: 'external', certificateDer: der, createdAt }),
    mode: 'default',
    certificateSha256: hash(),
    registeredBy: 'token:a',
    autoRegistration: true,
    provisioningTemplate: 'meters',
    ...overrides,
  };
}

const audit = (caId: string) => ({ actor: 'token:a', action: 'ca.register', target: `ca:${caId}` });

await describeOnBothDialects('external CAs and registration codes', ({ fresh }) => {
  it('spends the code and stores the CA, its settings, its mode and one audit entry together', async () => {
    const { store: s } = await fresh();
    const codeHash = await newCode(s);
    const r = registration({ code: { codeHash, tokenId: 'token:a' } });
    await s.registerExternalCa(r, audit(r.ca.id));
    const ca = await s.getCa(r.ca.id);
    assert.deepEqual([ca?.kind, ca?.certificateDer.equals(Buffer.from(r.ca.certificateDer))], ['external', true]);
    assert.deepEqual(await s.getCaProvisioning(r.ca.id), { caId: r.ca.id, autoRegistration: true, provisioningTemplate: 'meters' });
    const ext = await s.getExternalCa(r.ca.id);
    assert.deepEqual([ext?.mode, ext?.certificateSha256, ext?.registeredBy, ext?.createdAt.getTime()], ['default', r.certificateSha256, 'token:a', r.ca.createdAt.getTime()]);
    assert.equal((await s.listAuditLog({ limit: 10, target: `ca:${r.ca.id}` })).items.length, 1);

    // Spent: a second registration with it is refused and writes nothing.
    const again = registration({ code: { codeHash, tokenId: 'token:a' } });
    await rejectsWith(s.registerExternalCa(again, audit(again.ca.id)), 'forbidden');
    assert.equal(await s.getCa(again.ca.id), undefined);
    assert.equal((await s.listAuditLog({ limit: 10, target: `ca:${again.ca.id}` })).items.length, 0);
  });

  it('refuses a code of another token, an unknown one, and one at or after its expiry', async () => {
    const { store: s } = await fresh();
    const codeHash = await newCode(s, 'token:a');
    await rejectsWith(s.registerExternalCa(registration({ code: { codeHash, tokenId: 'token:b' } })), 'forbidden');
    await rejectsWith(s.registerExternalCa(registration({ code: { codeHash: hash(), tokenId: 'token:a' } })), 'forbidden');
    await rejectsWith(s.registerExternalCa(registration({ code: { codeHash, tokenId: 'token:a' } }, at(HOUR))), 'forbidden');
    // Still unspent and valid before then.
    await s.registerExternalCa(registration({ code: { codeHash, tokenId: 'token:a' } }, at(HOUR - 1)));
  });

  it('refuses the same certificate twice (by its hash, or the same DER under another row) and keeps the code unspent', async () => {
    const { store: s } = await fresh();
    const first = registration({ mode: 'sni-only' });
    await s.registerExternalCa(first);
    const codeHash = await newCode(s);
    await rejectsWith(s.registerExternalCa({ ...registration({ code: { codeHash, tokenId: 'token:a' } }), certificateSha256: first.certificateSha256 }), 'conflict');
    const twin = registration({ code: { codeHash, tokenId: 'token:a' } });
    await rejectsWith(s.registerExternalCa({ ...twin, ca: { ...twin.ca, serial: first.ca.serial, certificateDer: first.ca.certificateDer } }), 'conflict', /already registered/);
    // The code survived both rollbacks.
    await s.registerExternalCa(registration({ code: { codeHash, tokenId: 'token:a' } }));
  });

  it('refuses a missing parent; places a registered one; getExternalCa is undefined for certfleet CAs', async () => {
    const { store: s } = await fresh();
    const own = caFixture();
    await s.insertCa(own);
    assert.equal(await s.getExternalCa(own.id), undefined);
    const orphan = registration({ mode: 'sni-only' });
    await rejectsWith(s.registerExternalCa({ ...orphan, ca: { ...orphan.ca, parentId: 'ca-missing' } }), 'not-found');
    const child = registration({ mode: 'sni-only' });
    await s.registerExternalCa({ ...child, ca: { ...child.ca, parentId: own.id } });
    assert.equal((await s.getCa(child.ca.id))?.parentId, own.id);
  });

  it('purges codes that expired before a time, spent or not', async () => {
    const { store: s } = await fresh();
    await newCode(s, 'token:a', T0);
    await newCode(s, 'token:a', at(2 * HOUR));
    assert.equal(await s.purgeRegistrationCodes(at(HOUR + 1)), 1);
    assert.equal(await s.purgeRegistrationCodes(at(HOUR + 1)), 0);
  });
});
