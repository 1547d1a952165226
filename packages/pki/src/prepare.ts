/**
 * Preparing an issuance: apply the profile, run the lints, build the
 * to-be-signed bytes. The signer accepts only what this returns
 * (isPrepared), never bytes from elsewhere — Boulder's Prepare/Issue split.
 */
import { randomBytes } from 'node:crypto';
import { PkiError } from './errors.js';
import { checkGeneralName, type GeneralName } from './general-name.js';
import type { PublicKeyInfo } from './keys.js';
import { encodeName, formatName, type NameAttribute } from './name.js';
import type { CertificateTemplate } from './template.js';

export interface IssuanceRequest {
  readonly subject: readonly NameAttribute[];
  readonly publicKey: PublicKeyInfo;
  readonly sans?: readonly GeneralName[];
  /** Days of validity; the profile's default when absent. */
  readonly validityDays?: number;
  readonly now: Date;
  /** 16 bytes of CSPRNG output; drawn here when absent (injected for tests). */
  readonly serial?: Buffer;
  readonly crlUrl?: string;
}

export interface PreparedIssuance {
  readonly issuerId: string;
  readonly profile: string;
  /** Lowercase hex of the serial's magnitude. */
  readonly serial: string;
  readonly schemeOid: string;
  readonly tbs: Buffer;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyAlgorithm: string;
}

const prepared = new WeakSet<PreparedIssuance>();

/** True only for objects made by prepareIssuance in this process. */
export function isPrepared(p: PreparedIssuance): boolean {
  return prepared.has(p);
}

const DAY = 86_400_000;

function lint(ok: boolean, why: string): void {
  if (!ok) throw new PkiError('lint-failed', why);
}

/**
 * A serial: 128 bits from the CSPRNG, positive, never zero-led (so it encodes
 * to exactly 16 or 17 bytes; RFC 5280 §4.1.2.2 allows up to 20).
 */
export function newSerial(): Buffer {
  const s = randomBytes(16);
  if (s[0] === 0) s[0] = 1;
  return s;
}

export function prepareIssuance(template: CertificateTemplate, req: IssuanceRequest): PreparedIssuance {
  const { issuer, profile } = template;
  const days = req.validityDays ?? profile.validityDays;
  lint(Number.isInteger(days) && days >= 1, `validity of ${days} days is not a positive whole number`);
  lint(days <= profile.maxValidityDays, `validity of ${days} days exceeds the ${profile.name} profile's ${profile.maxValidityDays}`);
  lint(
    profile.keyAlgorithms.some((a) => req.publicKey.algorithm.startsWith(a)),
    `${req.publicKey.algorithm} keys are not accepted by the ${profile.name} profile`,
  );

  const subject = req.subject.filter((a) => profile.subjectAttributes.includes(a.type));
  const sans = req.sans ?? [];
  for (const n of sans) {
    lint(profile.sanTypes.includes(n.type), `subjectAltName ${n.type} is not allowed by the ${profile.name} profile`);
    checkGeneralName(n);
    lint(!(n.type === 'dns' && n.value.startsWith('*') && !profile.name.startsWith('server')), 'wildcard names are for servers only');
  }
  lint(!profile.sanRequired || sans.length > 0, `the ${profile.name} profile requires a subjectAltName`);
  lint(subject.length > 0 || sans.length > 0, 'a certificate needs a subject or a subjectAltName (RFC 5280 §4.1.2.6)');
  lint(!profile.ca || subject.length > 0, 'a CA certificate needs a subject (RFC 5280 §4.1.2.6)');
  if (profile.ca && issuer.pathLen !== null) {
    // §4.2.1.9: a CA below a constrained CA must have a smaller constraint.
    lint(issuer.pathLen > 0, 'the issuer may not sign CA certificates (pathLenConstraint 0)');
    lint(profile.pathLen !== null && profile.pathLen !== undefined && profile.pathLen < issuer.pathLen, 'pathLenConstraint must be below the issuer\'s');
  }

  const notBefore = new Date(Math.max(req.now.getTime() - profile.backdateSeconds * 1000, issuer.notBefore.getTime()));
  notBefore.setUTCMilliseconds(0);
  // A certificate never outlives its issuer: clamp rather than issue something
  // that validators would reject at the end of the issuer's life.
  const notAfter = new Date(Math.min(req.now.getTime() + days * DAY, issuer.notAfter.getTime()));
  notAfter.setUTCMilliseconds(0);
  lint(notAfter.getTime() > req.now.getTime(), 'the issuer expires before the certificate would start');

  const serial = req.serial ?? newSerial();
  lint(serial.length === 16 && serial[0] !== 0, 'serial must be 16 bytes, not zero-led');

  const subjectDer = encodeName(subject);
  const tbs = template.build({
    serial,
    notBefore,
    notAfter,
    subjectDer,
    spki: req.publicKey.spki,
    rsa: req.publicKey.type === 'rsa',
    sans,
    ...(req.crlUrl ? { crlUrl: req.crlUrl } : {}),
  });
  const p: PreparedIssuance = Object.freeze({
    issuerId: issuer.id,
    profile: profile.name,
    serial: serial.toString('hex'),
    schemeOid: issuer.scheme.oid,
    tbs,
    subject: formatName(subject),
    notBefore,
    notAfter,
    keyAlgorithm: req.publicKey.algorithm,
  });
  prepared.add(p);
  return p;
}
