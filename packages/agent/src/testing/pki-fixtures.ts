/**
 * Test certificates made with @certfleet/pki's public API only (the agent may
 * import nothing else of ours): a root, intermediates, device and server
 * leaves, at any point in time.
 */
import type { KeyObject } from 'node:crypto';
import {
  assembleCertificate,
  Certificate,
  CertificateTemplate,
  encodeName,
  generateKeyPair,
  importSpki,
  issuerInfoFromCertificate,
  parseName,
  prepareIssuance,
  PROFILES,
  schemeForKey,
  selfIssuerInfo,
  signWith,
  withValidity,
  type GeneralName,
  type Profile,
} from '@certfleet/pki';

export interface TestCa {
  readonly cert: Certificate;
  readonly key: KeyObject;
}

export interface Issued extends TestCa {
  readonly keyPem: string;
}

const spkiOf = (k: KeyObject) => importSpki(k.export({ format: 'der', type: 'spki' }));

function sign(template: CertificateTemplate, subject: string, publicKey: KeyObject, signer: KeyObject, now: Date, sans: GeneralName[] = [], validityDays?: number): Certificate {
  const p = prepareIssuance(template, {
    subject: parseName(subject),
    publicKey: spkiOf(publicKey),
    sans,
    now,
    ...(validityDays ? { validityDays } : {}),
  });
  const scheme = schemeForKey(signer);
  return Certificate.fromDer(assembleCertificate(p.tbs, scheme, signWith(scheme, p.tbs, signer)));
}

export function makeRoot(name = 'CN=Test Root', opts: { now?: Date; validityDays?: number } = {}): TestCa {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const subject = encodeName(parseName(name));
  const profile: Profile = opts.validityDays ? withValidity(PROFILES['root-ca'], opts.validityDays) : PROFILES['root-ca'];
  const template = new CertificateTemplate(selfIssuerInfo('root', subject, spkiOf(publicKey).spki, privateKey), profile);
  return { cert: sign(template, name, publicKey, privateKey, opts.now ?? new Date()), key: privateKey };
}

export function makeIntermediate(parent: TestCa, name = 'CN=Test Issuing CA', opts: { now?: Date; validityDays?: number } = {}): TestCa {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const template = new CertificateTemplate(issuerInfoFromCertificate('parent', parent.cert), PROFILES['intermediate-ca']);
  return { cert: sign(template, name, publicKey, parent.key, opts.now ?? new Date(), [], opts.validityDays), key: privateKey };
}

/** A device (clientAuth) or server (serverAuth) certificate; a fresh key unless `publicKey` is given. */
export function issueLeaf(
  ca: TestCa,
  opts: { profile?: 'device' | 'server'; name?: string; sans?: GeneralName[]; now?: Date; validityDays?: number; publicKey?: KeyObject } = {},
): Issued & { certPem: string } {
  const profile = PROFILES[opts.profile ?? 'device'];
  const pair = opts.publicKey ? undefined : generateKeyPair('ec-p256');
  const publicKey = opts.publicKey ?? pair!.publicKey;
  const sans = opts.sans ?? (profile.name === 'server' ? [{ type: 'dns', value: 'localhost' } as const] : []);
  const template = new CertificateTemplate(issuerInfoFromCertificate('ca', ca.cert), profile);
  const cert = sign(template, opts.name ?? 'CN=dev-1', publicKey, ca.key, opts.now ?? new Date(), sans, opts.validityDays);
  const key = pair?.privateKey as KeyObject;
  return { cert, key, certPem: cert.toPem(), keyPem: pair ? (pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string) : '' };
}
