/** /api/v1/audit-log: the hash-chained record of every CA and admin action. */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { AuditEntry } from '../../store/index.js';
import { pageQuery, pageSchema } from './paging.js';

const READ = ['auditor', 'operator'] as const;
const entrySchema = {
  type: 'object',
  properties: {
    seq: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string' },
    action: { type: 'string' },
    target: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
    prevHash: { type: 'string' },
    hash: { type: 'string' },
  },
} as const;

const view = (e: AuditEntry) => ({ seq: e.seq, at: e.at.toISOString(), actor: e.actor, action: e.action, target: e.target, details: e.details, prevHash: e.prevHash, hash: e.hash });

export function auditLogRoutes(app: FastifyInstance, s: Services): void {
  app.get<{ Querystring: { limit?: number; cursor?: string; target?: string; actor?: string } }>(
    '/api/v1/audit-log',
    {
      config: { scopes: READ },
      schema: {
        summary: 'Audit log entries, newest first',
        tags: ['audit'],
        querystring: { type: 'object', properties: { ...pageQuery.properties, target: { type: 'string', maxLength: 256 }, actor: { type: 'string', maxLength: 256 } } },
        response: { 200: pageSchema(entrySchema) },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await s.store.listAuditLog({ limit: q.limit ?? 100, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.target ? { target: q.target } : {}), ...(q.actor ? { actor: q.actor } : {}) });
      return { items: page.items.map(view), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.post(
    '/api/v1/audit-log/verify',
    {
      config: { scopes: READ },
      schema: {
        summary: 'Recompute the hash chain; names the first broken entry',
        tags: ['audit'],
        response: {
          200: {
            type: 'object',
            properties: {
              ok: { type: 'boolean' },
              entries: { type: 'integer' },
              head: {
                type: ['object', 'null'],
                description: 'the last entry: keep its hash elsewhere to detect a cut-off tail',
                properties: { seq: { type: 'integer' }, hash: { type: 'string' } },
              },
              firstBroken: { type: 'object', properties: { seq: { type: 'integer' }, reason: { type: 'string' } } },
            },
          },
        },
      },
    },
    async () => s.store.verifyAuditLog(),
  );
}
