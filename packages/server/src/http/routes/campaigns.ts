/** /api/v1/campaigns: rotation campaigns (lifecycle/campaigns.ts). Operators run them; auditors read them. */
import type { FastifyInstance } from 'fastify';
import type { CampaignView } from '../../lifecycle/campaigns.js';
import type { Services } from '../../services.js';
import { CAMPAIGN_ITEM_STATES, type CampaignItemRecord, type CampaignItemState, type CampaignRecord } from '../../store/index.js';
import { actorOf } from './actor.js';
import { pageQuery, pageSchema } from './paging.js';
import { problemSchema } from './views.js';

const RUN = ['admin', 'operator'] as const;
const READ = ['admin', 'operator', 'auditor'] as const;
const iso = { type: 'string', format: 'date-time' } as const;
const countsSchema = { type: 'object', properties: Object.fromEntries(CAMPAIGN_ITEM_STATES.map((s) => [s, { type: 'integer' }])) } as const;

const campaignSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['running', 'paused', 'cancelled', 'completed'] },
    selection: {
      type: 'object',
      properties: {
        expiringWithinDays: { type: 'integer' },
        caId: { type: 'string' },
        group: { type: 'string' },
        certificateIds: { type: 'array', items: { type: 'string' } },
      },
    },
    ratePerMinute: { type: 'integer' },
    graceSeconds: { type: 'integer' },
    issuerId: { type: ['string', 'null'], description: 'the CA the new certificates come from; null: each old certificate\'s issuer' },
    deadlineAt: { type: ['string', 'null'], format: 'date-time', description: 'after this, items whose device has not confirmed fail (reason deadline); null: no deadline' },
    createdBy: { type: 'string' },
    createdAt: iso,
    updatedAt: iso,
    counts: { ...countsSchema, description: 'items per state (detail only)' },
  },
} as const;

const itemSchema = {
  type: 'object',
  properties: {
    certificateId: { type: 'string' },
    thingName: { type: ['string', 'null'] },
    state: { type: 'string', enum: CAMPAIGN_ITEM_STATES },
    reason: { type: ['string', 'null'] },
    newCertificateId: { type: ['string', 'null'] },
    notifiedAt: { type: ['string', 'null'], format: 'date-time' },
    updatedAt: iso,
  },
} as const;

const campaignView = (c: CampaignRecord) => ({
  id: c.id,
  status: c.status,
  selection: c.selection,
  ratePerMinute: c.ratePerMinute,
  graceSeconds: c.graceSeconds,
  issuerId: c.issuerId,
  deadlineAt: c.deadlineAt?.toISOString() ?? null,
  createdBy: c.createdBy,
  createdAt: c.createdAt.toISOString(),
  updatedAt: c.updatedAt.toISOString(),
});

const detail = (v: CampaignView) => ({ ...campaignView(v.campaign), counts: v.counts });

const itemView = (i: CampaignItemRecord) => ({
  certificateId: i.certificateId,
  thingName: i.thingName,
  state: i.state,
  reason: i.reason,
  newCertificateId: i.newCertificateId,
  notifiedAt: i.notifiedAt?.toISOString() ?? null,
  updatedAt: i.updatedAt.toISOString(),
});

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } as const;

export function campaignRoutes(app: FastifyInstance, s: Services): void {
  const campaigns = s.rotation.campaigns;

  app.post<{ Body: { expiringWithinDays?: number; caId?: string; group?: string; certificateIds?: string[]; ratePerMinute?: number; graceSeconds?: number; issuer?: string; deadlineDays?: number } }>(
    '/api/v1/campaigns',
    {
      config: { scopes: RUN },
      schema: {
        summary: 'Start a rotation campaign: every active certificate on a thing matching the selection (parts combine) is asked to renew, at most ratePerMinute devices a minute',
        tags: ['campaigns'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            expiringWithinDays: { type: 'integer', minimum: 1, maximum: 3650 },
            caId: { type: 'string', maxLength: 64, description: 'issuing CA (id or name) of the certificates to renew' },
            group: { type: 'string', maxLength: 128, description: 'thing group whose members\' certificates to renew' },
            certificateIds: { type: 'array', minItems: 1, maxItems: 100_000, items: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } },
            ratePerMinute: { type: 'integer', minimum: 1, maximum: 100_000, default: 60 },
            graceSeconds: { type: 'integer', minimum: 0, maximum: 315_360_000, description: 'how long an old certificate stays (inactive) after its device confirmed the new one; default 7 days' },
            issuer: { type: 'string', maxLength: 64, description: 'CA (id or name) the new certificates come from; default each old certificate\'s issuer' },
            deadlineDays: { type: 'integer', minimum: 1, maximum: 3650, description: 'days after which devices that have not confirmed are given up on (their items fail, reason deadline; old certificates stay); default none' },
          },
        },
        response: { 201: campaignSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const v = await campaigns.create(actorOf(req), req.body ?? {});
      return reply.code(201).send(detail(v));
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/api/v1/campaigns',
    { config: { scopes: READ }, schema: { summary: 'List rotation campaigns, oldest first', tags: ['campaigns'], querystring: pageQuery, response: { 200: pageSchema(campaignSchema), '4xx': problemSchema } } },
    async (req) => {
      const page = await campaigns.list({ limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(campaignView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/campaigns/:id',
    { config: { scopes: READ }, schema: { summary: 'A campaign with its items counted per state', tags: ['campaigns'], params: idParams, response: { 200: campaignSchema, '4xx': problemSchema } } },
    async (req) => detail(await campaigns.get(req.params.id)),
  );

  app.get<{ Params: { id: string }; Querystring: { state?: CampaignItemState; limit: number; cursor?: string } }>(
    '/api/v1/campaigns/:id/items',
    {
      config: { scopes: READ },
      schema: {
        summary: "A campaign's items (one per target certificate), by certificate id",
        tags: ['campaigns'],
        params: idParams,
        querystring: { ...pageQuery, properties: { ...pageQuery.properties, state: { type: 'string', enum: CAMPAIGN_ITEM_STATES } } },
        response: { 200: pageSchema(itemSchema), '4xx': problemSchema },
      },
    },
    async (req) => {
      const { state, limit, cursor } = req.query;
      const page = await campaigns.items(req.params.id, { limit, ...(state ? { state } : {}), ...(cursor ? { cursor } : {}) });
      return { items: page.items.map(itemView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/v1/campaigns/:id/${action}`,
      {
        config: { scopes: RUN },
        schema: {
          summary: {
            pause: 'Stop notifying new devices (renewals in progress go on)',
            resume: 'Notify again at the campaign\'s rate',
            cancel: 'End the campaign: items not renewed yet fail (cancelled) and their retained renew-required is cleared',
          }[action],
          tags: ['campaigns'],
          params: idParams,
          response: { 200: campaignSchema, '4xx': problemSchema },
        },
      },
      async (req) => detail(await campaigns[action](actorOf(req), req.params.id)),
    );
  }
}
