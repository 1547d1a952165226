/**
 * Renewal of a device certificate by the device itself
 * (docs/device-protocol.md "Renewal and rotation campaigns"): a CSR with the
 * current subject and a new key gets a certificate for the same thing,
 * profile and policies, linked as renewing the current one. The old
 * certificate stays active until the device confirms from a connection made
 * with the new one; it is then deactivated at once and revoked `superseded`
 * (RFC 5280 §5.3.1) after the grace period, by a sweep that reads the
 * database, so a restart loses no retirement. A device that never confirms
 * keeps its old certificate.
 *
 * With an open campaign item for the old certificate the renewal counts for
 * that campaign (its issuer and grace period); without one it is a routine
 * renewal. A device that renews again before confirming gets a new
 * certificate and the earlier one is revoked `superseded` (as EST
 * re-enrollment does): it evidently never installed it.
 */
import { Certificate, decodePem, verifyCsr, type NameAttribute } from '@certfleet/pki';
import { CertfleetError, type ErrorCode } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { audit, SYSTEM, type Actor } from '../registry/actor.js';
import type { CertificateRegistry } from '../registry/certificate-registry.js';
import type { Issuance } from '../registry/issuance.js';
import type { Revoker } from '../revocation/revoker.js';
import type { CampaignStore, CertificateStore, RenewalStore } from '../store/index.js';
import { RenewalProgress } from './renewal-progress.js';

export const DEFAULT_GRACE_SECONDS = 7 * 86_400;

/** Why a renewal is refused, finer than the error code (a device switches on it). */
export type RenewalRefusalReason =
  | 'SubjectMismatch'
  | 'KeyReused'
  | 'CertificateNotActive'
  | 'NotYourThing'
  | 'NotTheNewCertificate'
  | 'NothingToConfirm'
  | 'RenewalAfterExpiryDisabled'
  | 'ExpiredTooLongAgo'
  | 'NotExpired';

const REASON_CODE: Record<RenewalRefusalReason, ErrorCode> = {
  SubjectMismatch: 'bad-request',
  KeyReused: 'bad-request',
  CertificateNotActive: 'forbidden',
  NotYourThing: 'forbidden',
  NotTheNewCertificate: 'forbidden',
  NothingToConfirm: 'not-found',
  RenewalAfterExpiryDisabled: 'forbidden',
  ExpiredTooLongAgo: 'forbidden',
  NotExpired: 'invalid-state',
};

export class RenewalRefusal extends CertfleetError {
  constructor(
    readonly reason: RenewalRefusalReason,
    message: string,
  ) {
    super(REASON_CODE[reason], message);
  }
}

export interface RenewalDeps {
  readonly store: Pick<CertificateStore, 'getCertificate'> &
    RenewalStore &
    Pick<CampaignStore, 'openItemOfCertificate' | 'getCampaign' | 'itemOfNewCertificate' | 'setCampaignItemState'>;
  readonly issuance: Pick<Issuance, 'prepareForThing'>;
  readonly certificates: Pick<CertificateRegistry, 'changeStatus'>;
  readonly revoker: Pick<Revoker, 'revoke'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
  /** Where campaign items are moved on; default one over `store` and `bus`. */
  readonly progress?: RenewalProgress;
  /** Grace period of a renewal outside a campaign; default 7 days. */
  readonly graceSeconds?: number;
  /** How often the sweep runs; default one minute. */
  readonly sweepIntervalMs?: number;
}

export interface Renewed {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly campaignId?: string;
}

export interface Confirmed {
  readonly certificateId: string;
  readonly retiring: string[];
}

/** Subjects compared as sets of attributes: issuance puts the CN last. */
const nameKey = (names: readonly NameAttribute[]): string => JSON.stringify(names.map((a) => `${a.type}=${a.value}`).sort());

/** The actor of a device's own request in the audit log. */
export const deviceActor = (certificateId: string): Actor => ({ id: `certificate:${certificateId}` });

const SWEEP_BATCH = 500;

export class Renewals {
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  readonly progress: RenewalProgress;

  constructor(private readonly deps: RenewalDeps) {
    this.progress = deps.progress ?? new RenewalProgress({ store: deps.store, bus: deps.bus });
  }

  /**
   * A new certificate for the holder of `currentId`, the thing `thing`
   * (the one in the request topic). `expired` lets an expired certificate
   * renew (renewal after expiry: the caller has checked the CA's setting).
   */
  async renew(currentId: string, thing: string, csrInput: string | Uint8Array, opts: { expired?: boolean } = {}): Promise<Renewed> {
    const current = await this.deps.store.getCertificate(currentId);
    if (!current || current.thingName !== thing) throw new RenewalRefusal('NotYourThing', `the certificate is not on thing ${thing}`);
    if (current.status !== 'active') throw new RenewalRefusal('CertificateNotActive', `certificate ${current.id} is ${current.status}`);
    const der = typeof csrInput === 'string' ? decodePem(csrInput, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST') : csrInput;
    const csr = verifyCsr(der);
    const old = Certificate.fromDer(current.der);
    if (nameKey(csr.subject) !== nameKey(old.subjectAttributes())) {
      throw new RenewalRefusal('SubjectMismatch', `the CSR's subject must be the current certificate's (${old.subject()})`);
    }
    if (csr.publicKey.spki.equals(old.spki)) throw new RenewalRefusal('KeyReused', 'a renewal needs a new key pair: the CSR carries the current key');
    if (!opts.expired && current.notAfter.getTime() <= this.deps.now().getTime()) {
      throw new RenewalRefusal('CertificateNotActive', `certificate ${current.id} expired at ${current.notAfter.toISOString()}`);
    }

    const item = await this.deps.store.openItemOfCertificate(current.id);
    const campaign = item ? await this.deps.store.getCampaign(item.campaignId) : undefined;
    const prepared = await this.deps.issuance.prepareForThing({
      thing,
      csr: der,
      profile: current.profile,
      issuer: campaign?.issuerId ?? current.issuerId,
      // A device's names are not taken from its CSR: they are carried over.
      ...(current.profile === 'server' ? {} : { sans: old.subjectAltNames() }),
    });
    const { record } = prepared;
    const actor = deviceActor(current.id);
    const { superseded } = await this.deps.store.insertRenewal(
      record,
      { replacesId: current.id, campaignId: campaign?.id ?? null, graceSeconds: campaign?.graceSeconds ?? this.grace, actor: actor.id },
      audit(actor, 'certificate.renew', `certificate:${record.id}`, {
        replaces: current.id,
        serial: record.serial,
        issuerId: record.issuerId,
        ...(campaign ? { campaignId: campaign.id } : {}),
        ...(opts.expired ? { afterExpiry: true } : {}),
      }),
    );
    // Committed: the superseded certificates are revoked (broker, CRL and OCSP follow).
    for (const c of superseded) this.deps.bus.emit('certificate.status-changed', { certificateId: c.id, from: 'active', to: 'revoked' });
    if (campaign) this.progress.changed(campaign.id, current, 'issued');
    return {
      certificateId: record.id,
      certificatePem: prepared.certificatePem,
      chainPem: prepared.chainPem,
      ...(campaign ? { campaignId: campaign.id } : {}),
    };
  }

  /**
   * `connectionCertificateId` is the certificate of the connection the
   * confirmation came on: only the new certificate itself can confirm, which
   * proves the device holds it and can connect with it.
   */
  async confirm(connectionCertificateId: string, thing: string, claimedId: unknown): Promise<Confirmed> {
    if (typeof claimedId !== 'string' || claimedId.toLowerCase() !== connectionCertificateId) {
      throw new RenewalRefusal('NotTheNewCertificate', 'confirm on a connection made with the new certificate, naming it as certificateId');
    }
    const renewal = await this.deps.store.getRenewal(connectionCertificateId);
    if (!renewal) throw new RenewalRefusal('NothingToConfirm', `certificate ${connectionCertificateId} renews no certificate`);
    const current = await this.deps.store.getCertificate(connectionCertificateId);
    if (!current || current.thingName !== thing) throw new RenewalRefusal('NotYourThing', `the certificate is not on thing ${thing}`);
    const at = this.deps.now();
    const first = renewal.confirmedAt === null;
    const confirmed = await this.deps.store.confirmRenewal(renewal.certificateId, at, new Date(at.getTime() + renewal.graceSeconds * 1000));
    const old = await this.deps.store.getCertificate(renewal.replacesId);
    if (first && confirmed.campaignId !== null && old) this.progress.changed(confirmed.campaignId, old, 'confirmed');
    // Durable first (the confirmation); a failure here is retried by the sweep.
    if (old?.status === 'active') await this.deactivate(old.id, renewal.certificateId).catch((err: unknown) => this.#warn(err));
    if (confirmed.retireAt !== null && confirmed.retireAt.getTime() <= at.getTime()) await this.sweep();
    return { certificateId: renewal.certificateId, retiring: [renewal.replacesId] };
  }

  /** Deactivates old certificates of confirmed renewals, and revokes those whose grace period is over. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    for (const r of await this.deps.store.confirmedWithActiveOld(SWEEP_BATCH)) {
      await this.deactivate(r.replacesId, r.certificateId).catch((err: unknown) => this.#warn(err));
    }
    for (const r of await this.deps.store.renewalsDue(this.deps.now(), SWEEP_BATCH)) {
      try {
        const old = await this.deps.store.getCertificate(r.replacesId);
        if (old && old.status !== 'revoked') await this.deps.revoker.revoke(SYSTEM, old.id, 'superseded', `renewed: replaced by ${r.certificateId}`);
        await this.deps.store.markRenewalRetired(r.certificateId, this.deps.now());
        if (r.campaignId !== null && old) this.progress.changed(r.campaignId, old, 'retired');
      } catch (err) {
        this.#warn(err);
      }
    }
  }

  /** Runs the sweep now and then every interval; the timer does not hold the process open. */
  start(): void {
    if (this.#timer) return;
    void this.sweep().catch((err: unknown) => this.#warn(err));
    this.#timer = setInterval(() => void this.sweep().catch((err: unknown) => this.#warn(err)), this.deps.sweepIntervalMs ?? 60_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => {});
  }

  private get grace(): number {
    return this.deps.graceSeconds ?? DEFAULT_GRACE_SECONDS;
  }

  private async deactivate(oldId: string, newId: string): Promise<void> {
    await this.deps.certificates.changeStatus(SYSTEM, oldId, 'inactive', { by: 'system', reason: `renewed: replaced by ${newId}` });
  }

  #warn(err: unknown): void {
    // The sweep runs again at the next interval; a lost race (the status changed meanwhile) is not a failure.
    if (err instanceof CertfleetError && err.code === 'invalid-state') return;
    console.error(`certfleet: renewal sweep: ${err instanceof Error ? err.message : String(err)}`);
  }
}
