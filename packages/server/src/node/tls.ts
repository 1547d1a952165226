/**
 * The node's own TLS identity: a server certificate for localhost (and this
 * host's name) from the issuing CA, sent with its intermediates so a device
 * holding only the root (ca.pem) can verify it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Certificate, type GeneralName } from '@certfleet/pki';
import { writePrivate, type DataDir } from '../config/data-dir.js';
import type { Services } from '../services.js';

const RENEW_BEFORE_DAYS = 30;

/** For the default tenant: localhost and this host; for a tenant: exactly its SNI host names (`names`). */
export async function issueServerCertificate(s: Services, dir: DataDir, names?: readonly string[]): Promise<void> {
  const issued = names ? await s.issuance.withGeneratedKey({ profile: 'server', commonName: names[0]!, sans: names.map((value) => ({ type: 'dns', value })) }) : await nodeCertificate(s);
  // Leaf and intermediates, not the root (RFC 8446 §4.4.2: the root may be omitted).
  const chain = issued.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).filter(Boolean);
  writePrivate(dir.tlsKey, issued.privateKeyPem);
  writePrivate(dir.tlsCert, issued.certificatePem + chain.slice(0, -1).join(''));
}

function nodeCertificate(s: Services) {
  const sans: GeneralName[] = [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  ];
  const host = hostname().toLowerCase();
  if (host && host !== 'localhost' && /^[a-z0-9.-]+$/.test(host)) sans.push({ type: 'dns', value: host });
  return s.issuance.withGeneratedKey({ profile: 'server', commonName: 'localhost', sans });
}

/** Renews the server certificate when it is within 30 days of expiry; returns the PEMs to serve. */
export async function serverTls(s: Services, dir: DataDir, names?: readonly string[]): Promise<{ key: string; cert: string }> {
  const leaf = Certificate.fromPem(readFileSync(dir.tlsCert, 'utf8'));
  if (leaf.notAfter().getTime() - s.now().getTime() < RENEW_BEFORE_DAYS * 86_400_000) await issueServerCertificate(s, dir, names);
  // After `certfleet ca set-default`: move to the default issuer if clients pinning ca.pem still verify its chain (lifecycle/issuer-rotation.ts).
  const served = Certificate.fromPem(readFileSync(dir.tlsCert, 'utf8'));
  if (existsSync(dir.caFile) && (await s.issuerRotation.serverCertificateMoves(served, Certificate.fromPem(readFileSync(dir.caFile, 'utf8'))))) {
    await issueServerCertificate(s, dir, names);
    await s.issuerRotation.serverCertificateReplaced(s.revoker, served);
  }
  return { key: readFileSync(dir.tlsKey, 'utf8'), cert: readFileSync(dir.tlsCert, 'utf8') };
}
