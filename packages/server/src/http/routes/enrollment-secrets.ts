/**
 * One-time EST enrollment secrets (provisioning/enrollment-secrets.ts):
 * operators make them per device or per batch, list them (never the secret:
 * it is shown once, at creation) and revoke unused ones.
 */
import type { FastifyInstance } from 'fastify';
import { MAX_SECRETS_PER_REQUEST } from '../../provisioning/enrollment-secrets.js';
import type { Services } from '../../services.js';
import { actorOf } from './actor.js';
import { pageQuery, pageSchema } from './paging.js';
import { problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator', 'provisioner'] as const;
const str = { type: 'string' } as const;
const nullable = { type: ['string', 'null'] } as const;
const secretSchema = {
  type: 'object',
  properties: {
    id: str,
    username: str,
    thing: nullable,
    batch: nullable,
    template: nullable,
    profile: str,
    createdAt: str,
    expiresAt: str,
    status: { type: 'string', enum: ['unused', 'spent', 'revoked', 'expired'] },
    spentAt: nullable,
    certificateId: nullable,
  },
} as const;

export function enrollmentSecretRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { thing?: string; count?: number; batch?: string; expiresInHours?: number; template?: string; profile?: string } }>(
    '/api/v1/enrollment-secrets',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Make one-time EST enrollment secrets: one bound to a thing, or count of them for a batch of devices not named yet',
        tags: ['est'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            thing: { type: 'string', maxLength: 128 },
            count: { type: 'integer', minimum: 1, maximum: MAX_SECRETS_PER_REQUEST },
            batch: { type: 'string', maxLength: 128 },
            expiresInHours: { type: 'integer', minimum: 1, maximum: 8760, default: 72 },
            template: { type: 'string', maxLength: 128 },
            profile: { type: 'string', enum: ['device', 'server'] },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              secrets: {
                type: 'array',
                items: { type: 'object', properties: { id: str, username: str, secret: { type: 'string', description: 'shown once, stored only as its SHA-256' }, thing: str, batch: str, expiresAt: str } },
              },
            },
          },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => reply.code(201).send({ secrets: await s.est.secrets.create(actorOf(req), req.body ?? {}) }),
  );

  app.get<{ Querystring: { batch?: string; limit?: number; cursor?: string } }>(
    '/api/v1/enrollment-secrets',
    {
      config: { scopes: READ },
      schema: {
        summary: 'List enrollment secrets (without the secrets), oldest first',
        tags: ['est'],
        querystring: { ...pageQuery, properties: { ...pageQuery.properties, batch: { type: 'string', maxLength: 128 } } },
        response: { 200: pageSchema(secretSchema), '4xx': problemSchema },
      },
    },
    async (req) => s.est.secrets.list({ limit: req.query.limit ?? 100, ...(req.query.batch ? { batch: req.query.batch } : {}), ...(req.query.cursor ? { cursor: req.query.cursor } : {}) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/enrollment-secrets/:id',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Revoke an unused enrollment secret (409 once spent)',
        tags: ['est'],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: secretSchema, '4xx': problemSchema },
      },
    },
    async (req) => s.est.secrets.revoke(actorOf(req), req.params.id),
  );
}
