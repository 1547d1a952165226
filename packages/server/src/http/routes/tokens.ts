/** /api/v1/tokens: operator API tokens (admin only). The secret is returned once, at creation. */
import type { FastifyInstance } from 'fastify';
import { CertfleetError } from '../../errors.js';
import { SCOPES, parseScopes } from '../../registry/tokens.js';
import type { Services } from '../../services.js';
import type { TokenRecord } from '../../store/index.js';
import { problemSchema } from './views.js';

const iso = { type: ['string', 'null'], format: 'date-time' } as const;
const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: iso,
    revokedAt: iso,
    lastUsedAt: iso,
  },
} as const;

const view = (t: TokenRecord) => ({
  id: t.id,
  name: t.name,
  scopes: t.scopes,
  createdAt: t.createdAt.toISOString(),
  expiresAt: t.expiresAt?.toISOString() ?? null,
  revokedAt: t.revokedAt?.toISOString() ?? null,
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
});

const NAME = /^[\x20-\x7e]{1,64}$/;

export function tokenRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name?: string; scopes: string[]; expiresInDays?: number } }>(
    '/api/v1/tokens',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Create an API token; the secret is in this answer only',
        tags: ['tokens'],
        body: {
          type: 'object',
          required: ['scopes'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', maxLength: 64 },
            scopes: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string', enum: [...SCOPES] } },
            expiresInDays: { type: 'integer', minimum: 1, maximum: 3650 },
          },
        },
        response: { 201: { type: 'object', properties: { token: { type: 'string' }, ...tokenSchema.properties } }, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const name = req.body.name ?? 'api';
      if (!NAME.test(name)) throw new CertfleetError('bad-request', 'token name must be 1-64 printable ASCII characters');
      const expires = req.body.expiresInDays ? new Date(s.now().getTime() + req.body.expiresInDays * 86_400_000) : null;
      const { token, record } = await s.tokens.create(name, parseScopes(req.body.scopes), expires);
      return reply.code(201).send({ token, ...view(record) });
    },
  );

  app.get(
    '/api/v1/tokens',
    { config: { scopes: ['admin'] }, schema: { summary: 'List API tokens (never their secrets)', tags: ['tokens'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: tokenSchema } } } } } },
    async () => ({ items: (await s.store.listTokens()).map(view) }),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/tokens/:id/revoke',
    { config: { scopes: ['admin'] }, schema: { summary: 'Revoke an API token', tags: ['tokens'], response: { 200: tokenSchema, '4xx': problemSchema } } },
    async (req) => {
      const t = (await s.store.listTokens()).find((x) => x.id === req.params.id);
      if (!t) throw new CertfleetError('not-found', `no token ${req.params.id}`);
      await s.store.revokeToken(t.id, s.now());
      return view({ ...t, revokedAt: t.revokedAt ?? s.now() });
    },
  );
}
