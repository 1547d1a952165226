/** /api/v1/webhooks (admin only: a webhook sees every event it names). The secret is returned once, at creation. */
import type { FastifyInstance } from 'fastify';
import { EVENT_NAMES } from '../../events/envelope.js';
import { MAX_URL_LENGTH } from '../../events/webhooks.js';
import type { Services } from '../../services.js';
import type { WebhookDeliveryRecord, WebhookRecord } from '../../store/index.js';
import { actorOf } from './actor.js';
import { problemSchema } from './views.js';

const ADMIN = ['admin'] as const;
const iso = { type: 'string', format: 'date-time' } as const;
const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;
const eventNames = { type: 'string', enum: ['*', ...EVENT_NAMES] } as const;

const webhookSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: eventNames },
    createdAt: iso,
  },
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'sent as X-Certfleet-Delivery' },
    eventId: { type: 'string' },
    type: { type: 'string' },
    attempts: { type: 'integer' },
    nextAttemptAt: { ...nullableIso, description: 'null once delivered or given up' },
    lastError: { type: ['string', 'null'] },
    deliveredAt: nullableIso,
    createdAt: iso,
  },
} as const;

const view = (w: WebhookRecord) => ({ id: w.id, url: w.url, events: w.events, createdAt: w.createdAt.toISOString() });

function deliveryView(d: WebhookDeliveryRecord) {
  const event = JSON.parse(d.event) as { id?: string; type?: string };
  return {
    id: d.id,
    eventId: event.id ?? '',
    type: event.type ?? '',
    attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
    lastError: d.lastError,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    createdAt: d.createdAt.toISOString(),
  };
}

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } as const;

export function webhookRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { url: string; events: string[]; secret?: string } }>(
    '/api/v1/webhooks',
    {
      config: { scopes: ADMIN },
      schema: {
        summary: 'Create a webhook: each matching event is POSTed as JSON {id, type, at, data}, signed with X-Certfleet-Signature: sha256=HMAC(secret, body)',
        tags: ['webhooks'],
        body: {
          type: 'object',
          required: ['url', 'events'],
          additionalProperties: false,
          properties: {
            url: { type: 'string', maxLength: MAX_URL_LENGTH, description: 'http:// or https://' },
            events: { type: 'array', minItems: 1, maxItems: EVENT_NAMES.length + 1, items: eventNames, description: 'event names, or ["*"] for all' },
            secret: { type: 'string', minLength: 8, maxLength: 256, description: 'shared secret for the signature; made and returned once when left out' },
          },
        },
        response: { 201: { type: 'object', properties: { ...webhookSchema.properties, secret: { type: 'string' } } }, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const { webhook, secret } = await s.webhooks.create(actorOf(req), req.body);
      return reply.code(201).send({ ...view(webhook), secret });
    },
  );

  app.get(
    '/api/v1/webhooks',
    { config: { scopes: ADMIN }, schema: { summary: 'List webhooks (never their secrets)', tags: ['webhooks'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: webhookSchema } } } } } },
    async () => ({ items: (await s.webhooks.list()).map(view) }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/webhooks/:id',
    { config: { scopes: ADMIN }, schema: { summary: 'Get a webhook', tags: ['webhooks'], params: idParams, response: { 200: webhookSchema, '4xx': problemSchema } } },
    async (req) => view(await s.webhooks.get(req.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/webhooks/:id',
    { config: { scopes: ADMIN }, schema: { summary: 'Delete a webhook and its pending deliveries', tags: ['webhooks'], params: idParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.webhooks.delete(actorOf(req), req.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/v1/webhooks/:id/deliveries',
    {
      config: { scopes: ADMIN },
      schema: {
        summary: "A webhook's latest deliveries, newest first: attempts, next attempt, last error",
        tags: ['webhooks'],
        params: idParams,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: deliverySchema } } }, '4xx': problemSchema },
      },
    },
    async (req) => ({ items: (await s.webhooks.deliveries(req.params.id, req.query.limit ?? 100)).map(deliveryView) }),
  );
}
