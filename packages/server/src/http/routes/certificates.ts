/** /api/v1/certificates */
import type { FastifyInstance } from 'fastify';
import { isKeyAlgorithm, KEY_ALGORITHMS, parseGeneralName, type GeneralName } from '@certfleet/pki';
import { CertfleetError } from '../../errors.js';
import type { Issued } from '../../registry/issuance.js';
import type { Services } from '../../services.js';
import type { CertificateStatus } from '../../store/index.js';
import { pageQuery, pageSchema } from './paging.js';
import { actorOf } from './actor.js';
import { certificateDetailSchema, certificateSchema, certificateView, detailView, problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const ISSUE = ['operator', 'provisioner'] as const;
const DAY = 86_400_000;

export const issuedSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    serial: { type: 'string' },
    certificatePem: { type: 'string' },
    chainPem: { type: 'string', description: 'issuing CA first, root last' },
    caPem: { type: 'string', description: 'the root devices trust' },
    privateKeyPem: { type: 'string', description: 'only for server-generated keys; returned once, never kept' },
    certificate: certificateSchema,
  },
} as const;

const common = {
  thing: { type: 'string', maxLength: 128 },
  profile: { type: 'string', enum: ['device', 'server'] },
  validityDays: { type: 'integer', minimum: 1, maximum: 3650 },
  issuer: { type: 'string', maxLength: 64, description: 'issuing CA id or name; the default issuing CA when absent' },
  sans: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 255 }, description: 'dns:…, ip:…, uri:…, email:…' },
} as const;

interface CommonBody {
  thing?: string;
  profile?: string;
  validityDays?: number;
  issuer?: string;
  sans?: string[];
}

function issueOptions(b: CommonBody) {
  let sans: GeneralName[] = [];
  try {
    sans = (b.sans ?? []).map(parseGeneralName);
  } catch (err) {
    throw new CertfleetError('bad-request', (err as Error).message, { cause: err });
  }
  return {
    ...(b.thing !== undefined ? { thing: b.thing } : {}),
    ...(b.profile !== undefined ? { profile: b.profile } : {}),
    ...(b.validityDays !== undefined ? { validityDays: b.validityDays } : {}),
    ...(b.issuer !== undefined ? { issuer: b.issuer } : {}),
    sans,
  };
}

export const issuedView = (i: Issued, privateKeyPem?: string) => ({
  id: i.record.id,
  serial: i.record.serial,
  certificatePem: i.certificatePem,
  chainPem: i.chainPem,
  caPem: i.rootPem,
  ...(privateKeyPem ? { privateKeyPem } : {}),
  certificate: certificateView(i.record),
});

export function certificateRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: CommonBody & { csr: string } }>(
    '/api/v1/certificates',
    {
      config: { scopes: ISSUE },
      schema: {
        summary: 'Sign a PKCS#10 CSR; the certificate is stored before the answer is sent',
        tags: ['certificates'],
        body: { type: 'object', required: ['csr'], additionalProperties: false, properties: { csr: { type: 'string', maxLength: 32768 }, ...common } },
        response: { 201: issuedSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const issued = await s.issuance.fromCsr({ csr: req.body.csr, ...issueOptions(req.body), actor: actorOf(req) });
      return reply.code(201).send(issuedView(issued));
    },
  );

  app.post<{ Body: CommonBody & { keyAlgorithm?: string; commonName?: string } }>(
    '/api/v1/certificates/generate',
    {
      config: { scopes: ISSUE },
      schema: {
        summary: 'Development phase: the server generates the key pair and returns it once with the certificate',
        tags: ['certificates'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { keyAlgorithm: { type: 'string', enum: [...KEY_ALGORITHMS] }, commonName: { type: 'string', maxLength: 64 }, ...common },
        },
        response: { 201: issuedSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const alg = req.body.keyAlgorithm;
      const issued = await s.issuance.withGeneratedKey({
        ...issueOptions(req.body),
        actor: actorOf(req),
        ...(alg && isKeyAlgorithm(alg) ? { keyAlgorithm: alg } : {}),
        ...(req.body.commonName ? { commonName: req.body.commonName } : {}),
      });
      return reply.code(201).send(issuedView(issued, issued.privateKeyPem));
    },
  );

  // A device certificate made elsewhere (registry/certificate-registration.ts): nothing is signed.
  app.post<{ Body: { certificatePem: string; caCertificatePem?: string; thing?: string; status?: 'active' | 'inactive' | 'pending-activation' } }>(
    '/api/v1/certificates/register',
    {
      config: { scopes: ISSUE },
      schema: {
        summary: 'Register a device certificate made elsewhere, under the registered CA that signed it (409 if its serial is already used in certfleet)',
        tags: ['certificates'],
        body: {
          type: 'object',
          required: ['certificatePem'],
          additionalProperties: false,
          properties: {
            certificatePem: { type: 'string', maxLength: 65536 },
            caCertificatePem: { type: 'string', maxLength: 65536, description: 'the registered CA that signed it, when several could have' },
            thing: common.thing,
            status: { type: 'string', enum: ['active', 'inactive', 'pending-activation'], description: 'default active' },
          },
        },
        response: { 201: certificateSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const record = await s.certificateRegistration.register(actorOf(req), {
        certificatePem: b.certificatePem,
        ...(b.caCertificatePem !== undefined ? { caCertificatePem: b.caCertificatePem } : {}),
        ...(b.thing !== undefined ? { thing: b.thing } : {}),
        ...(b.status !== undefined ? { status: b.status } : {}),
      });
      return reply.code(201).send(certificateView(record, true));
    },
  );

  app.get<{ Querystring: { status?: CertificateStatus; expiringWithinDays?: number; thing?: string; issuer?: string; limit?: number; cursor?: string } }>(
    '/api/v1/certificates',
    {
      config: { scopes: READ },
      schema: {
        summary: 'List certificates',
        tags: ['certificates'],
        querystring: {
          type: 'object',
          properties: {
            ...pageQuery.properties,
            status: certificateSchema.properties.status,
            expiringWithinDays: { type: 'integer', minimum: 0, maximum: 36500, description: 'notAfter within this many days (expired included)' },
            thing: { type: 'string', maxLength: 128 },
            issuer: { type: 'string', maxLength: 64 },
          },
        },
        response: { 200: pageSchema(certificateSchema), '4xx': problemSchema },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await s.store.listCertificates({
        limit: q.limit ?? 100,
        ...(q.cursor ? { cursor: q.cursor } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.thing ? { thing: q.thing } : {}),
        ...(q.issuer ? { issuerId: q.issuer } : {}),
        ...(q.expiringWithinDays !== undefined ? { expiringBefore: new Date(s.now().getTime() + q.expiringWithinDays * DAY) } : {}),
      });
      return { items: page.items.map((c) => certificateView(c)), ...(page.next ? { next: page.next } : {}) };
    },
  );

  const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } as const;
  app.get<{ Params: { id: string } }>(
    '/api/v1/certificates/:id',
    {
      config: { scopes: READ },
      schema: { summary: 'Certificate detail: subject, issuer, serial, fingerprint, validity, key, status history, thing, policies', tags: ['certificates'], params: idParams, response: { 200: certificateDetailSchema, '4xx': problemSchema } },
    },
    async (req) => detailView(await s.certificates.detail(req.params.id)),
  );

  app.post<{ Params: { id: string }; Body: { status: 'active' | 'inactive'; reason?: string } }>(
    '/api/v1/certificates/:id/status',
    {
      config: { scopes: ['operator'] },
      schema: {
        summary: 'Activate or deactivate a certificate (revocation has its own route; pending states are set by certfleet)',
        tags: ['certificates'],
        params: idParams,
        body: { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', enum: ['active', 'inactive'] }, reason: { type: 'string', maxLength: 256 } } },
        response: { 200: certificateSchema, '4xx': problemSchema },
      },
    },
    async (req) => certificateView(await s.certificates.changeStatus(actorOf(req), req.params.id, req.body.status, req.body.reason ? { reason: req.body.reason } : {})),
  );

  app.post<{ Params: { id: string }; Body: { thing: string } }>(
    '/api/v1/certificates/:id/attach',
    {
      config: { scopes: ['operator', 'provisioner'] },
      schema: {
        summary: 'Attach a certificate to a thing (one thing per certificate; a thing may hold several)',
        tags: ['certificates'],
        params: idParams,
        body: { type: 'object', required: ['thing'], additionalProperties: false, properties: { thing: { type: 'string', maxLength: 128 } } },
        response: { 200: certificateSchema, '4xx': problemSchema },
      },
    },
    async (req) => certificateView(await s.certificates.attachToThing(actorOf(req), req.params.id, req.body.thing)),
  );

  app.post<{ Params: { id: string }; Body: { reason: string; comment?: string } }>(
    '/api/v1/certificates/:id/revoke',
    {
      config: { scopes: ['operator'] },
      schema: {
        summary: 'Revoke with an RFC 5280 reason; final except certificateHold. The device is disconnected and CRL and OCSP follow within seconds',
        tags: ['certificates'],
        params: idParams,
        body: {
          type: 'object',
          required: ['reason'],
          additionalProperties: false,
          properties: {
            reason: { type: 'string', enum: ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn'] },
            comment: { type: 'string', maxLength: 256 },
          },
        },
        response: { 200: certificateSchema, '4xx': problemSchema },
      },
    },
    async (req) => certificateView(await s.revoker.revoke(actorOf(req), req.params.id, req.body.reason, req.body.comment)),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/certificates/:id/release',
    { config: { scopes: ['operator'] }, schema: { summary: 'Lift a certificateHold: the certificate is active again', tags: ['certificates'], params: idParams, response: { 200: certificateSchema, '4xx': problemSchema } } },
    async (req) => certificateView(await s.revoker.release(actorOf(req), req.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/certificates/:id/detach',
    { config: { scopes: ['operator'] }, schema: { summary: 'Detach a certificate from its thing', tags: ['certificates'], params: idParams, response: { 200: certificateSchema, '4xx': problemSchema } } },
    async (req) => certificateView(await s.certificates.detachFromThing(actorOf(req), req.params.id)),
  );
}
