/**
 * EST (RFC 7030) enrollment, the domain side (DESIGN.md "Provisioning"; the
 * HTTP edge is http/routes/est.ts, which authenticates the caller):
 *
 *  - cacerts (§4.1): the default issuing CA and its chain up to the root, as
 *    a certs-only PKCS#7;
 *  - simpleenroll (§4.2.1): a device certificate for a CSR. With a claim
 *    certificate: on no thing and with no policy (as fleet provisioning's
 *    create-from-csr). With a one-time enrollment secret over HTTP Basic:
 *    enrollment-secrets.ts;
 *  - simplereenroll (§4.2.2): a new certificate for the holder of a current,
 *    admitted certificate, with the same subject and SANs (else 400), for the
 *    same thing, profile and policies, stored in one transaction with a
 *    "replaces" link to the current one. The current one stays active
 *    through a grace period and is revoked `superseded` when the new one is
 *    first used or the grace period ends (reenrollment-grace.ts). Asked again
 *    with the same current certificate during the grace period, it answers a
 *    new certificate and revokes the previous, unused one: the device
 *    evidently did not install it. A campaign item for the current
 *    certificate moves on as with renewal over MQTT (reenrollment-grace.ts).
 *
 * Every answer is base64 of DER (§4: Content-Transfer-Encoding base64).
 */
import { Certificate, certsOnlyPkcs7, verifyCsr, type GeneralName, type NameAttribute } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import type { Authorities } from '../registry/authorities.js';
import type { CertificateRegistry } from '../registry/certificate-registry.js';
import { audit as auditEntry, type Actor } from '../registry/actor.js';
import type { Issuance } from '../registry/issuance.js';
import type { EnrollmentStore } from '../store/index.js';
import type { ReenrollmentGrace } from './reenrollment-grace.js';

/** A CSR is a few KiB; anything larger is not one. */
export const MAX_EST_BODY = 32 * 1024;

export interface EstDeps {
  readonly authorities: Pick<Authorities, 'chain' | 'defaultIssuerId'>;
  readonly issuance: Pick<Issuance, 'fromCsr'>;
  readonly certificates: Pick<CertificateRegistry, 'find'>;
  readonly reenrollments: Pick<EnrollmentStore, 'insertReenrollment'>;
  readonly grace: Pick<ReenrollmentGrace, 'graceUntil'> & Partial<Pick<ReenrollmentGrace, 'reenrolled'>>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

/** Base64 text to bytes, line breaks and other whitespace allowed (§4: base64 per RFC 2045). A PEM CSR is taken too. */
export function decodeEstBody(body: Buffer | string): Buffer {
  const text = (typeof body === 'string' ? body : body.toString('latin1')).trim();
  const pem = /^-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----$/.exec(text);
  const b64 = (pem ? pem[1]! : text).replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new CertfleetError('malformed-csr', 'the body must be a base64 DER PKCS#10 certificate request (RFC 7030 §4.2.1)');
  }
  return Buffer.from(b64, 'base64');
}

/** Base64 in lines of 64 characters ended by LF: EST clients ignore line breaks, and coreutils `base64 -d` refuses CR. */
export function base64Lines(der: Buffer): string {
  return (der.toString('base64').match(/.{1,64}/g) ?? []).join('\n') + '\n';
}

const nameKey = (names: readonly NameAttribute[]): string => JSON.stringify(names.map((a) => `${a.type}=${a.value}`).sort());
const sanKey = (names: readonly GeneralName[]): string => JSON.stringify([...new Set(names.map((n) => `${n.type}:${n.value.toLowerCase()}`))].sort());

export class EstEnrollment {
  constructor(private readonly deps: EstDeps) {}

  /** §4.1.3: the issuing CA first, the root last. */
  async caCertificates(): Promise<Buffer> {
    const chain = await this.deps.authorities.chain(await this.deps.authorities.defaultIssuerId());
    return certsOnlyPkcs7(chain);
  }

  /** §4.2.1: a device certificate (the key stays on the device), on no thing, with no policy. */
  async enroll(actor: Actor, csrDer: Buffer): Promise<{ certificateId: string; pkcs7: Buffer }> {
    const issued = await this.deps.issuance.fromCsr({ csr: csrDer, profile: 'device', actor });
    return { certificateId: issued.record.id, pkcs7: certsOnlyPkcs7([Certificate.fromDer(issued.record.der)]) };
  }

  /**
   * §4.2.2: `currentId` is the admitted TLS client certificate. The CSR's
   * subject must be the current certificate's (compared as a set of
   * attributes: issuance puts the CN last) and its SANs the same set.
   * `superseded` lists earlier re-enrolled certificates of the same current
   * one that this request revoked.
   */
  async reenroll(actor: Actor, currentId: string, csrDer: Buffer): Promise<{ certificateId: string; replacesId: string; superseded: string[]; pkcs7: Buffer }> {
    const current = await this.deps.certificates.find(currentId);
    if (current.status !== 'active') throw new CertfleetError('forbidden', `certificate ${current.id} is ${current.status}`);
    const csr = verifyCsr(csrDer);
    const old = Certificate.fromDer(current.der);
    if (nameKey(csr.subject) !== nameKey(old.subjectAttributes())) {
      throw new CertfleetError('bad-request', `the CSR's subject must be the current certificate's (${old.subject()}) (RFC 7030 §4.2.2)`);
    }
    if (sanKey(csr.requestedSans) !== sanKey(old.subjectAltNames())) {
      throw new CertfleetError('bad-request', "the CSR's subjectAltName set must be the current certificate's (RFC 7030 §4.2.2)");
    }
    const at = this.deps.now();
    let superseded: string[] = [];
    const issued = await this.deps.issuance.fromCsr({
      csr: csrDer,
      profile: current.profile,
      ...(current.thingName ? { thing: current.thingName } : {}),
      // A device's names are not taken from its CSR, so they are carried over from the current certificate.
      ...(current.profile === 'server' ? {} : { sans: old.subjectAltNames() }),
      actor,
      store: async (record, entry) => {
        const graceUntil = this.deps.grace.graceUntil(at);
        const result = await this.deps.reenrollments.insertReenrollment(
          { certificate: record, oldCertificateId: current.id, at, graceUntil, actor: actor.id },
          entry ?? auditEntry(actor, 'certificate.issue', `certificate:${record.id}`),
        );
        superseded = result.superseded.map((c) => c.id);
      },
    });
    const newId = issued.record.id;
    // Committed: previous unused certificates are revoked (broker, CRL, OCSP follow); the thing has one more certificate.
    for (const id of superseded) this.deps.bus.emit('certificate.status-changed', { certificateId: id, from: 'active', to: 'revoked' });
    if (current.thingName) this.deps.bus.emit('thing.changed', { thingName: current.thingName, certificateId: newId });
    // A rotation campaign that asked this device to renew counts this as its renewal (docs/device-protocol.md).
    await this.deps.grace.reenrolled?.(current, newId);
    return { certificateId: newId, replacesId: current.id, superseded, pkcs7: certsOnlyPkcs7([Certificate.fromDer(issued.record.der)]) };
  }
}
