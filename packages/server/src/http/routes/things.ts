/** /api/v1/things */
import type { FastifyInstance } from 'fastify';
import { KEY_ALGORITHMS } from '@certfleet/pki';
import type { Services } from '../../services.js';
import { issuedSchema, issuedView } from './certificates.js';
import { pageQuery, pageSchema } from './paging.js';
import { actorOf } from './actor.js';
import { certificateSchema, certificateView, problemSchema, thingSchema, thingView } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator', 'provisioner'] as const;
/** RFC 5280 reasons a replacement may give (revoker.ts; certificateHold is not final, so not a replacement). */
const REPLACEMENT_REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'];

export function thingRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name: string; attributes?: Record<string, string> } }>(
    '/api/v1/things',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Create a thing (a device)',
        tags: ['things'],
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, attributes: { type: 'object', additionalProperties: { type: 'string' } } },
        },
        response: { 201: thingSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(thingView(await s.things.createThing(actorOf(req), req.body.name, req.body.attributes))),
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/things',
    {
      config: { scopes: READ },
      schema: { summary: 'List things', tags: ['things'], querystring: pageQuery, response: { 200: pageSchema(thingSchema) } },
    },
    async (req) => {
      const page = await s.store.listThings({ limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(thingView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } } as const;
  const detailSchema = {
    type: 'object',
    properties: {
      ...thingSchema.properties,
      groups: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, depth: { type: 'integer' } } } },
      certificates: { type: 'array', items: certificateSchema },
    },
  } as const;
  app.get<{ Params: { name: string } }>(
    '/api/v1/things/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a thing with its groups (and their ancestors) and certificates', tags: ['things'], params: nameParams, response: { 200: detailSchema, '4xx': problemSchema } } },
    async (req) => {
      const thing = await s.things.getThing(req.params.name);
      const certs = await s.store.listCertificates({ thing: thing.name, limit: 100 });
      return { ...thingView(thing), groups: thing.groups.map((g) => ({ name: g.name, depth: g.depth })), certificates: certs.items.map((c) => certificateView(c)) };
    },
  );

  app.patch<{ Params: { name: string }; Body: { attributes: Record<string, string> } }>(
    '/api/v1/things/:name',
    {
      config: { scopes: WRITE },
      schema: {
        summary: "Replace a thing's attributes",
        tags: ['things'],
        params: nameParams,
        body: { type: 'object', required: ['attributes'], additionalProperties: false, properties: { attributes: { type: 'object', additionalProperties: { type: 'string' } } } },
        response: { 200: thingSchema, '4xx': problemSchema },
      },
    },
    async (req) => thingView(await s.things.updateThing(actorOf(req), req.params.name, req.body.attributes)),
  );

  app.post<{ Params: { name: string }; Body: { csr?: string; keyAlgorithm?: string; reason?: string; replaces?: string } }>(
    '/api/v1/things/:name/replace-certificate',
    {
      config: { scopes: ['operator'] },
      schema: {
        summary: 'Replace a device: a new certificate for the thing (from a CSR, or with a server-generated key) takes over its groups and the policies of the old certificates, and the old ones are revoked, in one transaction with one audit entry',
        description:
          'Revoked: the certificate named by `replaces` (id or serial), or by default every active and inactive certificate of the thing (pending ones are left alone). ' +
          'An unknown thing is 404 and a thing with nothing to replace is 409 invalid-state; both are refused before anything is signed. ' +
          'The old devices are disconnected and CRL and OCSP follow, as for a revocation.',
        tags: ['things'],
        params: nameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            csr: { type: 'string', maxLength: 32768, description: 'PKCS#10 PEM; without it the server generates the key pair and returns it once' },
            keyAlgorithm: { type: 'string', enum: [...KEY_ALGORITHMS], description: 'for a server-generated key (default ec-p256); not with csr' },
            reason: { type: 'string', enum: REPLACEMENT_REASONS, default: 'superseded', description: 'RFC 5280 reason for the old certificates' },
            replaces: { type: 'string', maxLength: 64, description: 'the one certificate to replace (id or serial); default: every active and inactive one' },
          },
        },
        response: {
          201: { type: 'object', properties: { ...issuedSchema.properties, revoked: { type: 'array', items: { type: 'string' }, description: 'ids of the certificates revoked' }, policies: { type: 'array', items: { type: 'string' }, description: 'policies attached to the new certificate' } } },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => {
      const { csr, keyAlgorithm, reason, replaces } = req.body ?? {};
      const r = await s.replacement.replace(actorOf(req), req.params.name, {
        ...(csr !== undefined ? { csr } : {}),
        ...(keyAlgorithm !== undefined ? { keyAlgorithm } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(replaces !== undefined ? { replaces } : {}),
      });
      return reply.code(201).send({ ...issuedView(r.issued, r.issued.privateKeyPem), revoked: r.revoked.map((c) => c.id), policies: r.policies });
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/things/:name',
    { config: { scopes: ['operator'] }, schema: { summary: 'Delete a thing that holds no certificate', tags: ['things'], params: nameParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.things.deleteThing(actorOf(req), req.params.name);
      return reply.code(204).send();
    },
  );
}
