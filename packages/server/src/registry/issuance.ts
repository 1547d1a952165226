/**
 * The deciding layer of issuance (Boulder's RA, step-ca's authority): it
 * verifies the request, decides subject, names and validity from the
 * profile, has pki prepare and lint the certificate, has the signer sign it,
 * and stores it before anyone sees it.
 */
import type {
  Certificate} from '@certfleet/pki';
import {
  commonName,
  decodePem,
  encodePem,
  generateKeyPair,
  importSpki,
  isProfileName,
  newSerial,
  OID,
  prepareIssuance,
  PROFILES,
  sha256Hex,
  verifyCsr,
  withValidity,
  type GeneralName,
  type KeyAlgorithm,
  type NameAttribute,
  type Profile,
  type PublicKeyInfo,
} from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { Signer } from '../signer/signer.js';
import type { AuditInput, CertificateRecord, CertificateStore, ThingStore } from '../store/index.js';
import type { Authorities } from './authorities.js';
import { audit, type Actor } from './actor.js';
import { checkThingName } from './things.js';

/** Profiles a caller may name; CA profiles are only reachable through Authorities. */
const ISSUABLE = new Set(['device', 'server']);

export interface IssueRequest {
  readonly thing?: string;
  readonly profile?: string;
  readonly validityDays?: number;
  /** Issuing CA id or name; the default issuing CA when absent. */
  readonly issuer?: string;
  /** Extra names (servers need at least one). */
  readonly sans?: readonly GeneralName[];
  /** Who asks, for the audit log; issuance by certfleet itself (TLS, provisioning) is journalled but not audited. */
  readonly actor?: Actor;
  /**
   * Stores the certificate in place of insertCertificate, for a caller that
   * must write more in the same transaction (fleet provisioning stores the
   * certificate with its ownership token). The answer still follows the commit.
   */
  readonly store?: (record: CertificateRecord, audit: AuditInput | undefined) => Promise<void>;
}

export interface CsrRequest extends IssueRequest {
  /** PEM text or DER bytes. */
  readonly csr: string | Uint8Array;
}

export interface GeneratedKeyRequest extends IssueRequest {
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Subject CN when there is no thing. */
  readonly commonName?: string;
}

export interface Issued {
  readonly record: CertificateRecord;
  readonly certificatePem: string;
  /** The issuing chain: the issuer first, the root last. */
  readonly chainPem: string;
  /** The root that devices trust. */
  readonly rootPem: string;
}

/** Device replacement: a new certificate for a thing, from a CSR or with a key made here. */
export interface ThingCertificateRequest extends Omit<IssueRequest, 'thing' | 'actor'> {
  readonly thing: string;
  /** PEM text or DER bytes; without it the server makes the key pair. */
  readonly csr?: string | Uint8Array;
  readonly keyAlgorithm?: KeyAlgorithm;
}

/** Signed and journalled, not stored: see prepareForThing. */
export interface PreparedCertificate extends Issued {
  /** Only when the server made the key; returned once, never kept. */
  readonly privateKeyPem?: string;
}

export interface IssuanceDeps {
  readonly certificates: Pick<CertificateStore, 'insertCertificate'>;
  readonly things: Pick<ThingStore, 'getThing'>;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly now: () => Date;
}

export class Issuance {
  constructor(private readonly deps: IssuanceDeps) {}

  private profileFor(req: IssueRequest): Profile {
    const name = req.profile ?? 'device';
    if (!isProfileName(name) || !ISSUABLE.has(name)) throw new CertfleetError('bad-request', `unknown profile "${name}" (device or server)`);
    const p: Profile = PROFILES[name];
    if (req.validityDays === undefined) return p;
    if (!Number.isInteger(req.validityDays) || req.validityDays < 1) throw new CertfleetError('bad-request', 'validityDays must be a positive integer');
    return withValidity(p, req.validityDays);
  }

  /** Signs a CSR. The key never leaves the device; only the profile's fields are honoured. */
  async fromCsr(req: CsrRequest): Promise<Issued> {
    const der = typeof req.csr === 'string' ? decodePem(req.csr, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST') : req.csr;
    const csr = verifyCsr(der);
    // Names asked for in the CSR are honoured only for servers; a device's identity is its thing.
    const sans = [...(req.sans ?? []), ...(this.profileFor(req).name === 'server' ? csr.requestedSans : [])];
    return this.issue(req, csr.subject, csr.publicKey, sans);
  }

  /**
   * Development phase: the server makes the key pair. The private key is
   * returned once and not kept.
   */
  async withGeneratedKey(req: GeneratedKeyRequest): Promise<Issued & { privateKeyPem: string }> {
    const { privateKey, publicKey } = generateKeyPair(req.keyAlgorithm ?? 'ec-p256');
    const subject: NameAttribute[] = req.commonName ? [{ type: OID.commonName, value: req.commonName }] : [];
    const issued = await this.issue(req, subject, importSpki(publicKey.export({ format: 'der', type: 'spki' })), req.sans ?? []);
    return { ...issued, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
  }

  /**
   * Signs a certificate for `thing` through the normal path (profile, pki
   * prepare and lint, the signer journals the serial before signing) but
   * does not store it: the caller stores `record` in its own transaction
   * (device replacement stores it together with the revocation of the old
   * certificates) and must not hand anything out before that commits.
   */
  async prepareForThing(req: ThingCertificateRequest): Promise<PreparedCertificate> {
    if (req.csr !== undefined && req.keyAlgorithm !== undefined) {
      throw new CertfleetError('bad-request', 'give a CSR or a key algorithm, not both');
    }
    if (req.csr !== undefined) {
      const csr = verifyCsr(typeof req.csr === 'string' ? decodePem(req.csr, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST') : req.csr);
      const sans = [...(req.sans ?? []), ...(this.profileFor(req).name === 'server' ? csr.requestedSans : [])];
      return this.sign(req, csr.subject, csr.publicKey, sans);
    }
    const { privateKey, publicKey } = generateKeyPair(req.keyAlgorithm ?? 'ec-p256');
    const signed = await this.sign(req, [], importSpki(publicKey.export({ format: 'der', type: 'spki' })), req.sans ?? []);
    return { ...signed, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
  }

  private async issue(req: IssueRequest, requested: readonly NameAttribute[], publicKey: PublicKeyInfo, sans: readonly GeneralName[]): Promise<Issued> {
    const signed = await this.sign(req, requested, publicKey, sans);
    const { record } = signed;
    // Durable before anyone sees it (DESIGN.md: the answer follows the commit).
    if (req.store) {
      await req.store(record, req.actor ? audit(req.actor, 'certificate.issue', `certificate:${record.id}`, { serial: record.serial, issuerId: record.issuerId, profile: record.profile }) : undefined);
      return signed;
    }
    await this.deps.certificates.insertCertificate(
      record,
      req.actor
        ? audit(req.actor, 'certificate.issue', `certificate:${record.id}`, { serial: record.serial, issuerId: record.issuerId, thing: record.thingName, profile: record.profile })
        : undefined,
    );
    return signed;
  }

  /** Decides, prepares and signs; stores nothing (the serial is journalled by the signer). */
  private async sign(req: IssueRequest, requested: readonly NameAttribute[], publicKey: PublicKeyInfo, sans: readonly GeneralName[]): Promise<Issued> {
    const profile = this.profileFor(req);
    const thing = req.thing === undefined ? undefined : checkThingName(req.thing);
    if (thing && !(await this.deps.things.getThing(thing))) throw new CertfleetError('not-found', `no thing named ${thing}`);
    // The thing's name is the certificate's CN: a device cannot name itself something else.
    const cn = thing ?? commonName(requested);
    const subject = [...requested.filter((a) => a.type !== OID.commonName), ...(cn ? [{ type: OID.commonName, value: cn }] : [])];

    const { authorities, signer, now } = this.deps;
    const issuerId = req.issuer ? (await authorities.get(req.issuer)).id : await authorities.defaultIssuerId();
    const template = await authorities.template(issuerId, profile);
    const at = now();
    // The serial is drawn here so a partitioned issuer's CRL shard (and URL) can follow from it.
    const serial = newSerial();
    const crlUrl = await authorities.crlUrl(issuerId, serial.toString('hex'));
    const prepared = prepareIssuance(template, { subject, publicKey, sans, now: at, serial, ...(crlUrl ? { crlUrl } : {}) });
    const der = await signer.issue(prepared);
    const record: CertificateRecord = {
      id: sha256Hex(der),
      serial: prepared.serial,
      issuerId,
      thingName: thing ?? null,
      status: 'active',
      profile: profile.name,
      subject: prepared.subject,
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      keyAlgorithm: prepared.keyAlgorithm,
      der,
      createdAt: at,
      revokedAt: null,
      revocationReason: null,
    };
    const chain = await authorities.chain(issuerId);
    return {
      record,
      certificatePem: encodePem('CERTIFICATE', der),
      chainPem: chain.map((c: Certificate) => c.toPem()).join(''),
      rootPem: chain[chain.length - 1]!.toPem(),
    };
  }
}
