/**
 * Fleet provisioning by claim over HTTPS:
 * - operators: /api/v1/provisioning-templates and /api/v1/claims (bearer tokens);
 * - devices without MQTT: /api/v1/provisioning/… (the same flow as the
 *   `$certfleet/` MQTT topics), authenticated by the claim certificate as the
 *   TLS client certificate on the api port. Admission is the broker's own:
 *   the certificate must chain to an active CA, be registered, active and
 *   in its validity period.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Admission, peerChain } from '../../broker/index.js';
import { CertfleetError } from '../../errors.js';
import type { Caller } from '../../provisioning/fleet-provisioning.js';
import type { Services } from '../../services.js';
import type { ProvisioningTemplateRecord } from '../../store/index.js';
import { actorOf } from './actor.js';
import { pageQuery, pageSchema } from './paging.js';
import { certificateSchema, certificateView, problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator'] as const;
const CLAIM = ['operator', 'provisioner'] as const;
const iso = { type: 'string', format: 'date-time' } as const;
/** The template's own grammar is checked by provisioning/templates.ts (its errors name the exact field). */
const documentSchema = { type: 'object', description: '{ parameters?, thing: { name, attributes?, groups?, override? }, policies?, deviceConfiguration?, preProvisioningHook? }', additionalProperties: true } as const;
const templateSchema = { type: 'object', properties: { name: { type: 'string' }, template: documentSchema, createdAt: iso, updatedAt: iso } } as const;
const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } } as const;
const deviceRoute = { config: { scopes: 'public' as const }, schema: { tags: ['provisioning'], security: [], response: { '4xx': problemSchema } } };

const templateView = (t: ProvisioningTemplateRecord) => ({ name: t.name, template: t.document, createdAt: t.createdAt.toISOString(), updatedAt: t.updatedAt.toISOString() });

export function provisioningRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name: string; template: unknown } }>(
    '/api/v1/provisioning-templates',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Create a provisioning template (validated before it is stored)',
        tags: ['provisioning'],
        body: { type: 'object', required: ['name', 'template'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 128 }, template: documentSchema } },
        response: { 201: templateSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(templateView(await s.fleet.templates.create(actorOf(req), req.body.name, req.body.template))),
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/provisioning-templates',
    { config: { scopes: READ }, schema: { summary: 'List provisioning templates', tags: ['provisioning'], querystring: pageQuery, response: { 200: pageSchema(templateSchema) } } },
    async (req) => {
      const page = await s.fleet.templates.list({ limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(templateView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/provisioning-templates/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a provisioning template', tags: ['provisioning'], params: nameParams, response: { 200: templateSchema, '4xx': problemSchema } } },
    async (req) => templateView(await s.fleet.templates.get(req.params.name)),
  );

  app.put<{ Params: { name: string }; Body: { template: unknown } }>(
    '/api/v1/provisioning-templates/:name',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Replace a provisioning template (devices provisioned before keep what they got)',
        tags: ['provisioning'],
        params: nameParams,
        body: { type: 'object', required: ['template'], additionalProperties: false, properties: { template: documentSchema } },
        response: { 200: templateSchema, '4xx': problemSchema },
      },
    },
    async (req) => templateView(await s.fleet.templates.replace(actorOf(req), req.params.name, req.body.template)),
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/provisioning-templates/:name',
    { config: { scopes: WRITE }, schema: { summary: 'Delete a provisioning template; its claims can no longer provision', tags: ['provisioning'], params: nameParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.fleet.templates.delete(actorOf(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { template: string; validityDays?: number } }>(
    '/api/v1/claims',
    {
      config: { scopes: CLAIM },
      schema: {
        summary: 'Make a claim credential: a certificate and key good only for fleet provisioning with one template',
        tags: ['provisioning'],
        body: {
          type: 'object',
          required: ['template'],
          additionalProperties: false,
          properties: { template: { type: 'string', maxLength: 128 }, validityDays: { type: 'integer', minimum: 1, maximum: 3650 } },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              template: { type: 'string' },
              certificatePem: { type: 'string' },
              privateKeyPem: { type: 'string', description: 'returned once, never kept' },
              chainPem: { type: 'string', description: 'issuing CA first, root last' },
              caPem: { type: 'string', description: 'the root devices trust' },
              certificate: certificateSchema,
            },
          },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => {
      const c = await s.fleet.claims.create(actorOf(req), { template: req.body.template, ...(req.body.validityDays !== undefined ? { validityDays: req.body.validityDays } : {}) });
      return reply.code(201).send({
        id: c.record.id,
        template: c.template,
        certificatePem: c.certificatePem,
        privateKeyPem: c.privateKeyPem,
        chainPem: c.chainPem,
        caPem: c.rootPem,
        certificate: certificateView(c.record),
      });
    },
  );

  // The device flow. Bearer tokens play no part: the claim certificate is the credential.
  const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now });
  const caller = async (req: FastifyRequest): Promise<Caller> => {
    const admitted = await admission.admit(peerChain(req.raw.socket));
    if (!admitted.ok) throw new CertfleetError('unauthorized', `a claim certificate is required as the TLS client certificate (${admitted.reason}: ${admitted.detail})`);
    return { certificateId: admitted.certificateId, clientId: `https:${req.ip}` };
  };
  const fleet = s.fleet.provisioning;

  app.post<{ Body: unknown }>(
    '/api/v1/provisioning/create-from-csr',
    { ...deviceRoute, schema: { ...deviceRoute.schema, summary: 'Devices: a certificate for a CSR and its ownership token (as $certfleet/certificates/create-from-csr/json)' } },
    async (req) => fleet.createFromCsr(await caller(req), req.body),
  );

  app.post<{ Body: unknown }>(
    '/api/v1/provisioning/create',
    { ...deviceRoute, schema: { ...deviceRoute.schema, summary: 'Devices: a key made here, its certificate and ownership token (as $certfleet/certificates/create/json)' } },
    async (req) => fleet.createKeysAndCertificate(await caller(req), req.body ?? {}),
  );

  app.post<{ Params: { name: string }; Body: unknown }>(
    '/api/v1/provisioning/templates/:name/provision',
    { ...deviceRoute, schema: { ...deviceRoute.schema, params: nameParams, summary: 'Devices: provision with a template (as $certfleet/provisioning-templates/{name}/provision/json)' } },
    async (req) => fleet.provision(await caller(req), req.params.name, req.body),
  );
}
