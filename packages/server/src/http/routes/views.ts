/** JSON shapes the API returns, and their schemas (which also feed the OpenAPI document). */
import { encodePem } from '@certfleet/pki';
import type { CertificateDetail } from '../../registry/certificate-registry.js';
import type { CaProvisioning, CaRecord, CertificateRecord, ThingRecord } from '../../store/index.js';

const pem = (der: Buffer): string => encodePem('CERTIFICATE', der);

const iso = { type: 'string', format: 'date-time' } as const;
const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;

export const thingSchema = {
  type: 'object',
  properties: { name: str, attributes: { type: 'object', additionalProperties: str }, createdAt: iso, updatedAt: iso },
} as const;

export const certificateSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'SHA-256 fingerprint of the DER, lowercase hex' },
    serial: { type: 'string', description: 'serial number, lowercase hex' },
    issuerId: str,
    thing: nullableStr,
    status: { type: 'string', enum: ['active', 'inactive', 'revoked', 'pending-activation', 'pending-transfer'] },
    profile: str,
    subject: str,
    notBefore: iso,
    notAfter: iso,
    keyAlgorithm: str,
    createdAt: iso,
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
    revocationReason: nullableStr,
    certificatePem: str,
  },
} as const;

export const caSchema = {
  type: 'object',
  properties: {
    id: str,
    name: str,
    parentId: nullableStr,
    kind: { type: 'string', enum: ['root', 'intermediate', 'external'] },
    status: { type: 'string', enum: ['active', 'inactive', 'revoked'] },
    keyAlgorithm: str,
    subject: str,
    serial: str,
    notBefore: iso,
    notAfter: iso,
    pathLen: { type: ['integer', 'null'] },
    autoRegistration: { type: 'boolean' },
    provisioningTemplate: nullableStr,
    crlShards: { type: 'integer' },
    renewAfterExpiryDays: { type: 'integer', description: 'days after expiry its device certificates may still renew; 0 is off (single CA views only)' },
    registrationMode: { type: 'string', enum: ['default', 'sni-only'], description: 'CAs registered from outside (kind external) only' },
    certificatePem: str,
  },
} as const;

export const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: { type: str, title: str, status: { type: 'integer' }, code: str, detail: str, instance: str },
} as const;

export const thingView = (t: ThingRecord) => ({
  name: t.name,
  attributes: t.attributes,
  createdAt: t.createdAt.toISOString(),
  updatedAt: t.updatedAt.toISOString(),
});

export const certificateView = (c: CertificateRecord, withPem = false) => ({
  id: c.id,
  serial: c.serial,
  issuerId: c.issuerId,
  thing: c.thingName,
  status: c.status,
  profile: c.profile,
  subject: c.subject,
  notBefore: c.notBefore.toISOString(),
  notAfter: c.notAfter.toISOString(),
  keyAlgorithm: c.keyAlgorithm,
  createdAt: c.createdAt.toISOString(),
  revokedAt: c.revokedAt?.toISOString() ?? null,
  revocationReason: c.revocationReason,
  ...(withPem ? { certificatePem: pem(c.der) } : {}),
});

export const caView = (c: CaRecord, p?: CaProvisioning) => ({
  id: c.id,
  name: c.name,
  parentId: c.parentId,
  kind: c.kind,
  status: c.status,
  keyAlgorithm: c.keyAlgorithm,
  subject: c.subject,
  serial: c.serial,
  notBefore: c.notBefore.toISOString(),
  notAfter: c.notAfter.toISOString(),
  pathLen: c.pathLen,
  ...(p ? { autoRegistration: p.autoRegistration, provisioningTemplate: p.provisioningTemplate } : {}),
  certificatePem: pem(c.certificateDer),
});


export const certificateDetailSchema = {
  type: 'object',
  properties: {
    ...certificateSchema.properties,
    issuer: str,
    issuerName: nullableStr,
    fingerprintSha256: str,
    policies: { type: 'array', items: str },
    history: {
      type: 'array',
      items: { type: 'object', properties: { status: str, reason: nullableStr, actor: str, at: iso } },
    },
  },
} as const;

export const detailView = (d: CertificateDetail) => ({
  ...certificateView(d.record, true),
  issuer: d.issuer,
  issuerName: d.issuerName,
  fingerprintSha256: d.fingerprintSha256,
  policies: d.policies,
  history: d.history.map((h) => ({ status: h.status, reason: h.reason, actor: h.actor, at: h.at.toISOString() })),
});
