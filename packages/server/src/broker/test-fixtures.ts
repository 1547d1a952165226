/**
 * A small device PKI in memory and hand-written fakes of the two store reads
 * admission needs (STYLE.md: small fakes over mocks). Tests only.
 */
import type { KeyObject } from 'node:crypto';
import { PROFILES } from '@certfleet/pki';
import { makeChild, makeRoot, type TestCa } from '../../../pki/src/testing/hierarchy.js';
import type {
  CaKind, CaRecord, CaStatus, CaStore, CertificateRecord, CertificateStatus, CertificateStore, ConnectionRecord, EffectivePolicy,
  EffectivePolicyStore, NewConnection, ThingRecord, ThingStore,
} from '../store/index.js';
import type { ConnectionRecordStore } from './connection-log.js';

export class FakeCas implements Pick<CaStore, 'listCas'> {
  readonly rows: CaRecord[] = [];
  reads = 0;

  add(id: string, ca: TestCa, kind: CaKind, parentId: string | null = null): this {
    const c = ca.cert;
    this.rows.push({
      id, name: id, parentId, kind, status: 'active', keyAlgorithm: c.keyAlgorithm(), subject: c.subject(), serial: c.serial(),
      certificateDer: c.der, notBefore: c.notBefore(), notAfter: c.notAfter(), pathLen: c.basicConstraints()?.pathLen ?? null, createdAt: new Date(),
    });
    return this;
  }

  setStatus(id: string, status: CaStatus): void {
    const row = this.rows.find((r) => r.id === id);
    if (!row) throw new Error(`no CA ${id}`);
    row.status = status;
  }

  async listCas(): Promise<CaRecord[]> {
    this.reads++;
    return this.rows.map((r) => ({ ...r }));
  }
}

export class FakeCertificates implements Pick<CertificateStore, 'getCertificate'> {
  readonly rows = new Map<string, CertificateRecord>();

  add(device: TestCa, issuerId: string, thingName: string | null, status: CertificateStatus = 'active'): this {
    const c = device.cert;
    this.rows.set(c.fingerprint(), {
      id: c.fingerprint(), serial: c.serial(), issuerId, thingName, status, profile: 'device', subject: c.subject(),
      notBefore: c.notBefore(), notAfter: c.notAfter(), keyAlgorithm: c.keyAlgorithm(), der: c.der, createdAt: new Date(),
      revokedAt: status === 'revoked' ? new Date() : null, revocationReason: status === 'revoked' ? 'keyCompromise' : null,
    });
    return this;
  }

  async getCertificate(id: string): Promise<CertificateRecord | undefined> {
    const r = this.rows.get(id);
    return r && { ...r };
  }

  setStatus(device: TestCa, status: CertificateStatus): void {
    const row = this.rows.get(device.cert.fingerprint());
    if (!row) throw new Error(`no certificate ${device.cert.subject()}`);
    row.status = status;
  }
}

/** Policies by certificate id, as effectivePolicies() would return them (groups already resolved). */
export class FakePolicies implements EffectivePolicyStore {
  readonly byCertificate = new Map<string, EffectivePolicy[]>();
  reads = 0;
  /** When set, every read fails with it. */
  failWith: Error | undefined;

  attach(device: TestCa, name: string, document: Record<string, unknown>): this {
    const list = this.byCertificate.get(device.cert.fingerprint()) ?? [];
    const version = (list.find((p) => p.name === name)?.version ?? 0) + 1;
    this.byCertificate.set(device.cert.fingerprint(), [...list.filter((p) => p.name !== name), { name, version, document }]);
    return this;
  }

  async effectivePolicies(certificateId: string): Promise<EffectivePolicy[]> {
    this.reads++;
    if (this.failWith) throw this.failWith;
    return (this.byCertificate.get(certificateId) ?? []).map((p) => ({ ...p }));
  }
}

export class FakeThings implements Pick<ThingStore, 'getThing'> {
  readonly rows = new Map<string, ThingRecord>();

  set(name: string, attributes: Record<string, string> = {}): this {
    this.rows.set(name, { name, attributes, createdAt: new Date(), updatedAt: new Date() });
    return this;
  }

  async getThing(name: string): Promise<ThingRecord | undefined> {
    const r = this.rows.get(name);
    return r && { ...r, attributes: { ...r.attributes } };
  }
}

/** Connection records in memory, written in the order the broker sends them. */
export class FakeConnectionRecords implements ConnectionRecordStore {
  readonly rows = new Map<string, ConnectionRecord>();
  /** Milliseconds each write takes, to show that nothing waits for it. */
  delayMs = 0;

  async recordConnect(c: NewConnection): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.rows.set(c.id, { ...c, disconnectedAt: null, disconnectReason: null });
  }

  async recordDisconnect(id: string, at: Date, reason: string): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delayMs));
    const row = this.rows.get(id);
    if (!row) throw new Error(`no connection ${id}`);
    if (row.disconnectedAt === null) Object.assign(row, { disconnectedAt: at, disconnectReason: reason });
  }

  async closeOpenConnections(nodeId: string, at: Date, reason: string): Promise<number> {
    const open = [...this.rows.values()].filter((r) => r.nodeId === nodeId && r.disconnectedAt === null);
    for (const r of open) Object.assign(r, { disconnectedAt: at, disconnectReason: reason });
    return open.length;
  }

  byCertificate(device: TestCa): ConnectionRecord[] {
    return [...this.rows.values()].filter((r) => r.certificateId === device.cert.fingerprint());
  }
}

export interface Fleet {
  readonly root: TestCa;
  readonly issuing: TestCa;
  /** Registered and active, thing dev-1. */
  readonly dev1: TestCa;
  /** Registered and active, thing dev-2. */
  readonly dev2: TestCa;
  /** Chains to the registered CA but is not in the certificate store. */
  readonly unknown: TestCa;
  readonly revoked: TestCa;
  readonly inactive: TestCa;
  readonly pending: TestCa;
  /** notBefore ten days from now. */
  readonly future: TestCa;
  /** A registered certificate whose extended key usage is serverAuth only. */
  readonly serverOnly: TestCa;
  /** From a CA certfleet has never seen. */
  readonly foreign: TestCa;
  readonly foreignIssuing: TestCa;
  /** The broker's own TLS identity: SAN DNS:localhost, IP:127.0.0.1, IP:::1. */
  readonly server: TestCa;
  readonly cas: FakeCas;
  readonly certificates: FakeCertificates;
}

/** Fresh stores over one hierarchy; the hierarchy itself is built once per process (key generation is the slow part). */
export function fleet(): Fleet {
  const pki = (hierarchy ??= buildHierarchy());
  const cas = new FakeCas().add('root', pki.root, 'root').add('issuing', pki.issuing, 'intermediate', 'root');
  const certificates = new FakeCertificates()
    .add(pki.dev1, 'issuing', 'dev-1')
    .add(pki.dev2, 'issuing', 'dev-2')
    .add(pki.revoked, 'issuing', 'dev-r', 'revoked')
    .add(pki.inactive, 'issuing', 'dev-i', 'inactive')
    .add(pki.pending, 'issuing', 'dev-p', 'pending-activation')
    .add(pki.future, 'issuing', 'dev-f')
    .add(pki.serverOnly, 'issuing', null);
  return { ...pki, cas, certificates };
}

let hierarchy: Omit<Fleet, 'cas' | 'certificates'> | undefined;

function buildHierarchy(): Omit<Fleet, 'cas' | 'certificates'> {
  const root = makeRoot('ec-p256', 'CN=Fleet Root');
  const issuing = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Fleet Issuing CA' });
  const device = (name: string, opts: { now?: Date } = {}) => makeChild(issuing, PROFILES.device, { name: `CN=${name}`, ...opts });
  const foreignRoot = makeRoot('ec-p256', 'CN=Elsewhere Root');
  const foreignIssuing = makeChild(foreignRoot, PROFILES['intermediate-ca'], { name: 'CN=Elsewhere Issuing CA' });
  return {
    root,
    issuing,
    dev1: device('dev-1'),
    dev2: device('dev-2'),
    unknown: device('dev-unknown'),
    revoked: device('dev-r'),
    inactive: device('dev-i'),
    pending: device('dev-p'),
    future: device('dev-f', { now: new Date(Date.now() + 10 * 86_400_000) }),
    serverOnly: makeChild(issuing, PROFILES.server, { name: 'CN=not-a-device', sans: [{ type: 'dns', value: 'not-a-device' }] }),
    foreign: makeChild(foreignIssuing, PROFILES.device, { name: 'CN=dev-1' }),
    foreignIssuing,
    server: makeChild(issuing, PROFILES.server, {
      name: 'CN=localhost',
      sans: [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' }],
    }),
  };
}

export const keyPem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }).toString();

/** DER chain as a TLS peer would send it: leaf, then intermediates. */
export const chainOf = (...cas: TestCa[]): Buffer[] => cas.map((c) => c.cert.der);
