/**
 * Certificates after issuance: detail, status changes by the transition
 * rules, and which thing a certificate belongs to. Revocation (with its
 * RFC 5280 reason, CRLs and OCSP) goes through revocation/, which uses
 * changeStatus here.
 */
import { Certificate } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type {
  CaStore,
  CertificateLifecycleStore,
  CertificateRecord,
  CertificateStatus,
  CertificateStatusEntry,
  CertificateStore,
  PolicyStore,
  ThingStore,
} from '../store/index.js';
import { audit, type Actor } from './actor.js';
import { checkTransition, type StatusActor } from './certificate-status.js';
import { checkThingName } from './things.js';

export interface CertificateRegistryDeps {
  readonly certificates: Pick<CertificateStore, 'getCertificate' | 'getCertificateBySerial'> & CertificateLifecycleStore;
  readonly cas: Pick<CaStore, 'getCa'>;
  readonly things: Pick<ThingStore, 'getThing'>;
  readonly policies: Pick<PolicyStore, 'policiesOfTarget'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

/** Audit action names by target status. */
const STATUS_ACTION: Record<CertificateStatus, string> = {
  active: 'activate',
  inactive: 'deactivate',
  revoked: 'revoke',
  'pending-activation': 'set-pending-activation',
  'pending-transfer': 'set-pending-transfer',
};

export interface CertificateDetail {
  readonly record: CertificateRecord;
  readonly issuer: string;
  readonly issuerName: string | null;
  readonly fingerprintSha256: string;
  readonly history: CertificateStatusEntry[];
  readonly policies: string[];
}

export class CertificateRegistry {
  constructor(private readonly deps: CertificateRegistryDeps) {}

  /** By id (SHA-256 fingerprint) or serial, both hex. */
  async find(idOrSerial: string): Promise<CertificateRecord> {
    const key = idOrSerial.toLowerCase();
    if (!/^[0-9a-f]{1,64}$/.test(key)) throw new CertfleetError('bad-request', 'a certificate is named by its SHA-256 fingerprint or its serial, in hex');
    const c = (await this.deps.certificates.getCertificate(key)) ?? (await this.deps.certificates.getCertificateBySerial(key));
    if (!c) throw new CertfleetError('not-found', `no certificate ${idOrSerial}`);
    return c;
  }

  async detail(idOrSerial: string): Promise<CertificateDetail> {
    const record = await this.find(idOrSerial);
    const cert = Certificate.fromDer(record.der);
    const ca = await this.deps.cas.getCa(record.issuerId);
    return {
      record,
      issuer: cert.issuer(),
      issuerName: ca?.name ?? null,
      fingerprintSha256: cert.fingerprint(),
      history: await this.deps.certificates.certificateHistory(record.id),
      policies: await this.deps.policies.policiesOfTarget({ type: 'certificate', id: record.id }),
    };
  }

  /** Changes a status by the transition rules; the compare-and-set in the store catches a concurrent change. */
  async changeStatus(
    actor: Actor,
    idOrSerial: string,
    to: CertificateStatus,
    opts: { by?: StatusActor; reason?: string; revocationReason?: string } = {},
  ): Promise<CertificateRecord> {
    const c = await this.find(idOrSerial);
    checkTransition(c.status, to, opts.by ?? 'operator', c.revocationReason === 'certificateHold');
    const updated = await this.deps.certificates.setCertificateStatus(
      c.id,
      c.status,
      to,
      { actor: actor.id, at: this.deps.now(), reason: opts.reason ?? null, revocationReason: opts.revocationReason ?? null },
      audit(actor, `certificate.${STATUS_ACTION[to]}`, `certificate:${c.id}`, {
        from: c.status,
        to,
        ...(opts.revocationReason ? { revocationReason: opts.revocationReason } : {}),
      }),
    );
    this.deps.bus.emit('certificate.status-changed', { certificateId: c.id, from: c.status, to });
    return updated;
  }

  async attachToThing(actor: Actor, idOrSerial: string, thing: unknown): Promise<CertificateRecord> {
    const c = await this.find(idOrSerial);
    const name = checkThingName(thing);
    if (c.status === 'revoked') throw new CertfleetError('invalid-state', 'a revoked certificate cannot be attached to a thing');
    if (!(await this.deps.things.getThing(name))) throw new CertfleetError('not-found', `no thing named ${name}`);
    await this.deps.certificates.attachCertificateToThing(c.id, name, audit(actor, 'certificate.attach', `certificate:${c.id}`, { thing: name }));
    this.deps.bus.emit('thing.changed', { thingName: name });
    return { ...c, thingName: name };
  }

  async detachFromThing(actor: Actor, idOrSerial: string): Promise<CertificateRecord> {
    const c = await this.find(idOrSerial);
    if (!c.thingName) throw new CertfleetError('invalid-state', 'the certificate belongs to no thing');
    await this.deps.certificates.detachCertificate(c.id, audit(actor, 'certificate.detach', `certificate:${c.id}`, { thing: c.thingName }));
    this.deps.bus.emit('thing.changed', { thingName: c.thingName });
    return { ...c, thingName: null };
  }
}
