/**
 * /api/v1/tenants: the node's tenants (admin only, on the default tenant's
 * API alone: a tenant manages its own fleet, never other tenants). Creating
 * one makes its data set and starts it at once; its admin token is in the
 * answer only. Each change is in the default tenant's audit log.
 */
import type { FastifyInstance } from 'fastify';
import { audit } from '../../registry/actor.js';
import type { Services } from '../../services.js';
import type { Tenancy, TenantView } from '../../node/tenants.js';
import { MAX_SNI_HOSTS } from '../../tenancy/names.js';
import { actorOf } from './actor.js';
import { problemSchema } from './views.js';

const str = { type: 'string' } as const;
const tenantSchema = {
  type: 'object',
  properties: { name: str, sniHosts: { type: 'array', items: str }, createdAt: { type: 'string', format: 'date-time' }, publicUrl: str },
} as const;

const view = (t: TenantView) => ({ name: t.name, sniHosts: t.sniHosts, createdAt: t.createdAt, publicUrl: t.publicUrl });

export function tenantRoutes(app: FastifyInstance, s: Services, tenancy: Tenancy): void {
  app.post<{ Body: { name: string; sniHosts: string[] } }>(
    '/api/v1/tenants',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Create a tenant: an isolated data set selected by the TLS server names (SNI) its devices and operators send',
        tags: ['tenants'],
        body: {
          type: 'object',
          required: ['name', 'sniHosts'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', maxLength: 31 },
            sniHosts: { type: 'array', minItems: 1, maxItems: MAX_SNI_HOSTS, items: { type: 'string', maxLength: 253 } },
          },
        },
        response: {
          201: { type: 'object', properties: { ...tenantSchema.properties, adminToken: str, caPem: str, cliJson: str } },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const t = await tenancy.create(req.body.name, req.body.sniHosts);
      await s.store.appendAudit(audit(actor, 'tenant.create', `tenant:${t.name}`, { sniHosts: t.sniHosts }));
      return reply.code(201).send({ ...view(t), adminToken: t.adminToken, caPem: t.caPem, cliJson: t.cliJson });
    },
  );

  app.get(
    '/api/v1/tenants',
    { config: { scopes: ['admin'] }, schema: { summary: 'List tenants', tags: ['tenants'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: tenantSchema } } } } } },
    async () => ({ items: tenancy.list().map(view) }),
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/tenants/:name',
    { config: { scopes: ['admin'] }, schema: { summary: 'Show a tenant', tags: ['tenants'], response: { 200: tenantSchema, '4xx': problemSchema } } },
    async (req) => view(tenancy.get(req.params.name)),
  );

  app.delete<{ Params: { name: string }; Querystring: { purge?: boolean } }>(
    '/api/v1/tenants/:name',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Stop a tenant: its connections close and its SNI hosts select the default tenant; its data stays unless purge',
        tags: ['tenants'],
        querystring: { type: 'object', additionalProperties: false, properties: { purge: { type: 'boolean' } } },
        response: { 204: { type: 'null' }, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await tenancy.delete(req.params.name, req.query.purge ?? false);
      await s.store.appendAudit(audit(actor, 'tenant.delete', `tenant:${req.params.name}`, { purge: req.query.purge ?? false }));
      return reply.code(204).send();
    },
  );
}
