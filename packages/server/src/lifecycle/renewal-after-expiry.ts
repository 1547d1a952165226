/**
 * Renewal after expiry (DESIGN.md "Device agent": "renewal after expiry
 * where policy allows"). A device offline past its certificate's notAfter
 * can no longer connect over MQTT (admission wants a certificate in its
 * validity period), so it asks on the api port, `POST /api/v1/renew-expired`,
 * with the expired certificate as its TLS client certificate: the handshake's
 * CertificateVerify (RFC 8446 §4.4.3, RFC 5246 §7.4.8) proves it holds the
 * old key; the TLS server asks for a certificate without judging it.
 *
 * Off by default: each CA says how many days after expiry the certificates
 * it issued may still renew (`renewAfterExpiryDays`, 0 = never). The
 * certificate must
 *  - chain to an active registered CA as of its own notAfter (RFC 5280 §6.1
 *    with the validation time set to the moment it was last valid), be
 *    registered and still active — a revoked certificate, or one an operator
 *    (or a confirmed renewal) deactivated, was not in service when it
 *    expired: the broker's Admission, at that time, decides all of this;
 *  - be expired, no more than the issuing CA's N days ago.
 * The CSR then goes through the ordinary renewal (renewal.ts): same subject,
 * new key, the same thing, profile and policies, and the device confirms
 * from a connection made with the new certificate.
 *
 * A refusal is final for that certificate: the device provisions afresh by
 * claim (the answer says `fallback: "claim"`).
 */
import { Certificate } from '@certfleet/pki';
import { Admission, type AdmissionRefusal } from '../broker/index.js';
import { CertfleetError } from '../errors.js';
import { audit, type Actor } from '../registry/actor.js';
import type { Authorities } from '../registry/authorities.js';
import type { CaStore, CertificateStore, RenewalPolicyStore } from '../store/index.js';
import { RenewalRefusal, type Renewals, type Renewed } from './renewal.js';

const DAY = 86_400_000;
/** Ten years: longer than any device certificate certfleet issues lives. */
export const MAX_RENEW_AFTER_EXPIRY_DAYS = 3650;

/** The certificate is not one that may renew after expiry; `reason` is the admission's (unknown-certificate, revoked-certificate…). */
export class ExpiredCertificateRefusal extends CertfleetError {
  constructor(
    readonly reason: AdmissionRefusal,
    message: string,
  ) {
    super('forbidden', message);
  }
}

export interface RenewalAfterExpiryDeps {
  readonly store: Pick<RenewalPolicyStore, 'renewAfterExpiryDays' | 'setRenewAfterExpiryDays'> & Pick<CertificateStore, 'getCertificate'> & Pick<CaStore, 'listCas'>;
  readonly authorities: Pick<Authorities, 'get'>;
  readonly renewals: Pick<Renewals, 'renew'>;
  readonly now: () => Date;
}

export class RenewalAfterExpiry {
  constructor(private readonly deps: RenewalAfterExpiryDeps) {}

  /** Days after expiry certificates of this CA (id or name) may renew; 0 is off. */
  async days(idOrName: string): Promise<number> {
    const ca = await this.deps.authorities.get(idOrName);
    return (await this.deps.store.renewAfterExpiryDays(ca.id)) ?? 0;
  }

  async setDays(actor: Actor, idOrName: string, days: number): Promise<number> {
    if (!Number.isInteger(days) || days < 0 || days > MAX_RENEW_AFTER_EXPIRY_DAYS) {
      throw new CertfleetError('bad-request', `renewAfterExpiryDays must be a whole number of days from 0 (off) to ${MAX_RENEW_AFTER_EXPIRY_DAYS}`);
    }
    const ca = await this.deps.authorities.get(idOrName);
    await this.deps.store.setRenewAfterExpiryDays(ca.id, days, audit(actor, 'ca.set-renew-after-expiry', `ca:${ca.id}`, { days }));
    return days;
  }

  /** `peerChain` is what the TLS client sent, leaf first; `csr` a PEM certificate request. */
  async renew(peerChain: readonly Buffer[], csr: string): Promise<Renewed> {
    if (peerChain.length === 0) throw new CertfleetError('unauthorized', 'the expired certificate is required as the TLS client certificate');
    let leaf: Certificate;
    try {
      leaf = Certificate.fromDer(peerChain[0]!);
    } catch {
      throw new ExpiredCertificateRefusal('untrusted-chain', 'the client certificate is not a DER X.509 certificate certfleet can read');
    }
    // Everything admission checks, as of the last moment the certificate was valid.
    const lastValid = leaf.notAfter();
    const admitted = await new Admission({ cas: this.deps.store, certificates: this.deps.store, now: () => lastValid, caCacheMs: 0 }).admit(peerChain);
    if (!admitted.ok) throw new ExpiredCertificateRefusal(admitted.reason, admitted.detail);
    const current = await this.deps.store.getCertificate(admitted.certificateId);
    if (!current) throw new ExpiredCertificateRefusal('unknown-certificate', `certificate ${admitted.certificateId} is not registered`);

    const now = this.deps.now().getTime();
    const expiredFor = now - current.notAfter.getTime();
    if (expiredFor <= 0) throw new RenewalRefusal('NotExpired', `certificate ${current.id} is valid until ${current.notAfter.toISOString()}: renew it over MQTT or EST`);
    const days = (await this.deps.store.renewAfterExpiryDays(current.issuerId)) ?? 0;
    if (days === 0) throw new RenewalRefusal('RenewalAfterExpiryDisabled', `the CA that issued certificate ${current.id} does not allow renewal after expiry`);
    if (expiredFor > days * DAY) {
      throw new RenewalRefusal('ExpiredTooLongAgo', `certificate ${current.id} expired at ${current.notAfter.toISOString()}, more than ${days} days ago`);
    }
    return this.deps.renewals.renew(current.id, current.thingName ?? '', csr, { expired: true });
  }
}
