/**
 * CAs made outside certfleet (a factory HSM, a contract manufacturer's CA),
 * registered so that devices they signed are admitted, provisioned just in
 * time (JITP) or registered just in time (JITR) exactly as under certfleet's
 * own CAs (DESIGN.md "Certificate authorities").
 *
 * - mode 'default': proof of possession of the CA key (proof-of-possession.ts)
 *   with a registration code, spent in the registering transaction.
 * - mode 'sni-only': no proof of possession. Recorded, so that tenants chosen
 *   by TLS SNI can later scope such a CA to the tenant that registered it;
 *   until then it is trusted like a default one, as registering any CA is an
 *   admin's decision.
 *
 * The CA certificate must be a self-signed root or be issued by a registered
 * CA (its parent), so every anchor certfleet holds sits in its CA tree.
 * Such a CA is stored with kind 'external' and no key: certfleet never issues
 * under it, nor signs its CRLs or OCSP responses (registry/authorities.ts
 * refuses), while revocation of its device certificates in the registry, and
 * admission, work as for any CA.
 */
import { randomBytes } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { CaProvisioning, CaProvisioningStore, CaRecord, CaStore, ExternalCaMode, ExternalCaStore } from '../store/index.js';
import { audit, type Actor } from './actor.js';
import { certificateFromPem, checkCaCertificate, placeCaCertificate, registrationCodeOf } from './proof-of-possession.js';
import { hashRegistrationCode, REGISTRATION_CODE } from './registration-codes.js';

export const EXTERNAL_CA_MODES: readonly ExternalCaMode[] = ['default', 'sni-only'];

const CA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ExternalCaRequest {
  readonly caCertificate: string;
  /** Required in mode 'default': subject CN = a registration code, signed with the CA key. */
  readonly verificationCertificate?: string;
  readonly mode?: ExternalCaMode;
  /** Default: `ext-` and the first 16 hex digits of the certificate's SHA-256. */
  readonly name?: string;
  readonly autoRegistration?: boolean;
  /** Already checked by the caller (provisioning/jit.ts checkProvisioningTemplate). */
  readonly provisioningTemplate?: string | null;
  readonly status?: 'active' | 'inactive';
}

export interface RegisteredCa {
  readonly record: CaRecord;
  readonly provisioning: CaProvisioning;
  readonly mode: ExternalCaMode;
}

export interface ExternalCasDeps {
  readonly store: Pick<CaStore, 'listCas' | 'getCa'> & Pick<CaProvisioningStore, 'getCaProvisioning'> & Pick<ExternalCaStore, 'registerExternalCa' | 'getExternalCa'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

export class ExternalCas {
  constructor(private readonly deps: ExternalCasDeps) {}

  async register(actor: Actor, req: ExternalCaRequest): Promise<RegisteredCa> {
    const mode = req.mode ?? 'default';
    if (!EXTERNAL_CA_MODES.includes(mode)) throw new CertfleetError('bad-request', `mode must be one of ${EXTERNAL_CA_MODES.join(', ')}`);
    const now = this.deps.now();
    const cert = certificateFromPem(req.caCertificate, 'caCertificate');
    checkCaCertificate(cert, now);

    let code: { codeHash: string; tokenId: string } | undefined;
    if (mode === 'default') {
      if (!req.verificationCertificate) {
        throw new CertfleetError('bad-request', 'verificationCertificate is required in mode default (proof of possession of the CA key); mode sni-only registers without it');
      }
      const presented = registrationCodeOf(cert, certificateFromPem(req.verificationCertificate, 'verificationCertificate'));
      // Only certfleet's own format can match a stored code: anything else is refused before the store.
      if (!REGISTRATION_CODE.test(presented)) throw new CertfleetError('forbidden', 'the verification certificate\'s CN is not a registration code (GET /api/v1/cas/registration-code)');
      code = { codeHash: hashRegistrationCode(presented), tokenId: actor.id };
    }

    const { parentId } = placeCaCertificate(cert, await this.deps.store.listCas());
    const sha256 = cert.fingerprint();
    const name = req.name ?? `ext-${sha256.slice(0, 16)}`;
    if (!CA_NAME.test(name)) throw new CertfleetError('bad-request', `CA name "${name}" must be 1-64 of A-Z a-z 0-9 . _ -`);
    const status = req.status ?? 'active';
    if (status !== 'active' && status !== 'inactive') throw new CertfleetError('bad-request', 'status must be active or inactive');
    const record: CaRecord = {
      id: `ca-${randomBytes(8).toString('hex')}`,
      name,
      parentId,
      kind: 'external',
      status,
      keyAlgorithm: cert.keyAlgorithm(),
      subject: cert.subject(),
      serial: cert.serial(),
      certificateDer: cert.der,
      notBefore: cert.notBefore(),
      notAfter: cert.notAfter(),
      pathLen: cert.basicConstraints()?.pathLen ?? null,
      createdAt: now,
    };
    const autoRegistration = req.autoRegistration ?? false;
    const provisioningTemplate = req.provisioningTemplate ?? null;
    await this.deps.store.registerExternalCa(
      { ca: record, mode, certificateSha256: sha256, registeredBy: actor.id, autoRegistration, provisioningTemplate, ...(code ? { code } : {}) },
      audit(actor, 'ca.register', `ca:${record.id}`, { name, mode, subject: record.subject, parentId, certificateSha256: sha256, autoRegistration, provisioningTemplate }),
    );
    // The broker reads its CA list again (broker/registry-events.ts), so the new anchor is used at once.
    this.deps.bus.emit('ca.status-changed', { caId: record.id, to: status });
    return { record, provisioning: { caId: record.id, autoRegistration, provisioningTemplate }, mode };
  }

  /** The registration mode of a CA registered from outside; undefined for CAs certfleet made. */
  async modeOf(caId: string): Promise<ExternalCaMode | undefined> {
    return (await this.deps.store.getExternalCa(caId))?.mode;
  }
}
