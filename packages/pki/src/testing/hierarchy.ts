/** Builds a root → intermediate → leaf hierarchy in memory, for tests of pki and its users. */
import type { KeyObject } from 'node:crypto';
import { Certificate } from '../certificate.js';
import { issuerInfoFromCertificate, selfIssuerInfo } from '../issuer.js';
import { generateKeyPair, importSpki, schemeForKey, signWith, type KeyAlgorithm } from '../keys.js';
import { encodeName, parseName } from '../name.js';
import { prepareIssuance, type IssuanceRequest } from '../prepare.js';
import { PROFILES, type Profile } from '../profile.js';
import { assembleCertificate, CertificateTemplate } from '../template.js';
import type { GeneralName } from '../general-name.js';

export interface TestCa {
  readonly cert: Certificate;
  readonly key: KeyObject;
}

export function signPrepared(template: CertificateTemplate, req: IssuanceRequest, key: KeyObject): Certificate {
  const p = prepareIssuance(template, req);
  const scheme = schemeForKey(key);
  return Certificate.fromDer(assembleCertificate(p.tbs, scheme, signWith(scheme, p.tbs, key)));
}

export function makeRoot(alg: KeyAlgorithm = 'ec-p256', name = 'CN=Test Root', now = new Date()): TestCa {
  const { privateKey, publicKey } = generateKeyPair(alg);
  const pub = importSpki(publicKey.export({ format: 'der', type: 'spki' }));
  const subject = parseName(name);
  const template = new CertificateTemplate(selfIssuerInfo('root', encodeName(subject), pub.spki, privateKey), PROFILES['root-ca']);
  return { cert: signPrepared(template, { subject, publicKey: pub, now }, privateKey), key: privateKey };
}

export function makeChild(
  parent: TestCa,
  profile: Profile,
  opts: { alg?: KeyAlgorithm; name?: string; sans?: GeneralName[]; now?: Date; validityDays?: number } = {},
): TestCa {
  const { privateKey, publicKey } = generateKeyPair(opts.alg ?? 'ec-p256');
  const template = new CertificateTemplate(issuerInfoFromCertificate('parent', parent.cert), profile);
  const cert = signPrepared(
    template,
    {
      subject: parseName(opts.name ?? `CN=${profile.name}`),
      publicKey: importSpki(publicKey.export({ format: 'der', type: 'spki' })),
      sans: opts.sans ?? [],
      now: opts.now ?? new Date(),
      ...(opts.validityDays ? { validityDays: opts.validityDays } : {}),
    },
    parent.key,
  );
  return { cert, key: privateKey };
}
