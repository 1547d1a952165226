/**
 * Registering device certificates made elsewhere (DESIGN.md "Issuance"), as
 * AWS IoT's RegisterCertificate: the certificate comes in as PEM, nothing is
 * signed. Its issuer must be a registered CA (made by certfleet, or
 * registered from outside in either mode, external-cas.ts), found by the
 * leaf's issuer name and a signature that verifies with that CA's key; the
 * leaf is then validated against that CA (RFC 5280 §6) at registration time.
 *
 * A certificate whose issuer is not registered is refused: registering its
 * CA in mode sni-only needs no proof of possession, so "without a CA" costs
 * one step and keeps every admitted path anchored on a registered CA.
 *
 * certificates.serial is unique across certfleet (the OCSP and CRL paths look
 * certificates up by serial): a certificate whose serial another certificate
 * already has is refused with a 409, even under another CA.
 */
import { Certificate, validateChain, verifyWith } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { CaRecord, CaStore, CertificateRecord, CertificateStatus, CertificateStore } from '../store/index.js';
import { audit, type Actor } from './actor.js';
import { certificateFromPem } from './proof-of-possession.js';

/** The profile recorded for certificates registered rather than issued. */
export const REGISTERED_PROFILE = 'registered';

export const REGISTRABLE_STATUSES: readonly CertificateStatus[] = ['active', 'inactive', 'pending-activation'];

export interface CertificateRegistrationRequest {
  readonly certificatePem: string;
  /** Names which registered CA signed it, when several could have. */
  readonly caCertificatePem?: string;
  readonly thing?: string;
  /** Default 'active'. */
  readonly status?: CertificateStatus;
}

export interface CertificateRegistrationDeps {
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly certificates: Pick<CertificateStore, 'insertCertificate' | 'getCertificate' | 'getCertificateBySerial'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

export class CertificateRegistration {
  constructor(private readonly deps: CertificateRegistrationDeps) {}

  async register(actor: Actor, req: CertificateRegistrationRequest): Promise<CertificateRecord> {
    const status = req.status ?? 'active';
    if (!REGISTRABLE_STATUSES.includes(status)) throw new CertfleetError('bad-request', `status must be one of ${REGISTRABLE_STATUSES.join(', ')}`);
    const leaf = certificateFromPem(req.certificatePem, 'certificatePem');
    if (leaf.basicConstraints()?.ca) throw new CertfleetError('bad-request', `${leaf.subject()} is a CA certificate: register CAs with POST /api/v1/cas/register`);
    const given = req.caCertificatePem === undefined ? undefined : certificateFromPem(req.caCertificatePem, 'caCertificatePem');
    const { ca, cert: caCert } = await this.issuerOf(leaf, given);
    if (ca.status === 'revoked') throw new CertfleetError('invalid-state', `CA ${ca.name} is revoked: nothing it signed can be registered`);
    const now = this.deps.now();
    // The whole of RFC 5280 path validation against that one anchor (validity, critical extensions, key usage).
    validateChain(leaf, { roots: [caCert], at: now });

    const id = leaf.fingerprint();
    if (await this.deps.certificates.getCertificate(id)) throw new CertfleetError('conflict', `certificate ${id} is already registered`);
    const serial = leaf.serial();
    const taken = await this.deps.certificates.getCertificateBySerial(serial);
    if (taken) throw new CertfleetError('conflict', `serial ${serial} is already used by certificate ${taken.id}; certfleet keeps serials unique across all CAs`);

    const record: CertificateRecord = {
      id,
      serial,
      issuerId: ca.id,
      thingName: req.thing ?? null,
      status,
      profile: REGISTERED_PROFILE,
      subject: leaf.subject(),
      notBefore: leaf.notBefore(),
      notAfter: leaf.notAfter(),
      keyAlgorithm: leaf.keyAlgorithm(),
      der: leaf.der,
      createdAt: now,
      revokedAt: null,
      revocationReason: null,
    };
    await this.deps.certificates.insertCertificate(
      record,
      audit(actor, 'certificate.register', `certificate:${id}`, { caId: ca.id, subject: record.subject, serial, status, thing: record.thingName }),
    );
    this.deps.bus.emit('certificate.registered', { certificateId: id, caId: ca.id, status });
    return record;
  }

  /** The registered CA that signed `leaf` (restricted to `given` when named): an active registration first. */
  private async issuerOf(leaf: Certificate, given: Certificate | undefined): Promise<{ ca: CaRecord; cert: Certificate }> {
    const found: Array<{ ca: CaRecord; cert: Certificate }> = [];
    for (const ca of await this.deps.cas.listCas()) {
      let cert: Certificate;
      try {
        cert = Certificate.fromDer(ca.certificateDer);
      } catch {
        continue;
      }
      if (given && !given.der.equals(cert.der)) continue;
      if (!leaf.issuerDer.equals(cert.subjectDer)) continue;
      if (!verifyWith(leaf.signatureScheme(), leaf.tbs, cert.publicKey, leaf.signature)) continue;
      found.push({ ca, cert });
    }
    const pick = found.find((f) => f.ca.status === 'active') ?? found[0];
    if (pick) return pick;
    if (given) {
      throw new CertfleetError('chain-invalid', `the CA ${given.subject()} is not registered or did not sign this certificate: register the CA first (certfleet ca register; --mode sni-only needs no proof of possession)`);
    }
    throw new CertfleetError('chain-invalid', `no registered CA signed this certificate (issuer ${leaf.issuer()}): register that CA first (certfleet ca register; --mode sni-only needs no proof of possession)`);
  }
}
