/** /api/v1/audits: run the fleet audits on demand (each run and its findings are stored), and the forecast. */
import type { FastifyInstance } from 'fastify';
import { forecast } from '../../lifecycle/forecast.js';
import type { Services } from '../../services.js';

const findingSchema = {
  type: 'object',
  properties: {
    severity: { type: 'string', enum: ['critical', 'high', 'medium', 'low'] },
    reasonCode: { type: 'string' },
    resourceType: { type: 'string', enum: ['ca', 'certificate', 'policy', 'thing'] },
    resource: { type: 'string' },
    message: { type: 'string' },
    mitigations: { type: 'array', items: { type: 'string' } },
  },
} as const;

export function auditRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { expiringWithinDays?: number; maxAgeDays?: number; notSeenDays?: number } | undefined }>(
    '/api/v1/audits/run',
    {
      config: { scopes: ['auditor', 'operator'] },
      schema: {
        summary: 'Audit the fleet: expiring or expired CAs and certificates, revoked CAs with active certificates, cloned identities, weak and ROCA keys, permissive policies, silent devices',
        tags: ['audits'],
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            expiringWithinDays: { type: 'integer', minimum: 0, maximum: 3650 },
            maxAgeDays: { type: 'integer', minimum: 1, maximum: 36500 },
            notSeenDays: { type: 'integer', minimum: 1, maximum: 3650 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              runAt: { type: 'string', format: 'date-time' },
              runId: { type: 'string' },
              newFindings: { type: 'integer' },
              resolvedFindings: { type: 'integer' },
              summary: { type: 'object', additionalProperties: { type: 'integer' } },
              findings: { type: 'array', items: findingSchema },
            },
          },
        },
      },
    },
    async (req) => {
      const { run, findings } = await s.auditFindings.run('api', req.body ?? {});
      const summary: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
      for (const f of findings) summary[f.severity] = (summary[f.severity] ?? 0) + 1;
      return { runAt: run.startedAt.toISOString(), runId: run.id, newFindings: run.newFindings, resolvedFindings: run.resolvedFindings, summary, findings };
    },
  );

  const weekly = { type: 'array', items: { type: 'integer' } } as const;
  app.get<{ Querystring: { weeks?: number; renewalWindowDays?: number; offlineDays?: number } }>(
    '/api/v1/forecast',
    {
      config: { scopes: ['auditor', 'operator'] },
      schema: {
        summary: 'Certificates expiring per week (in all, per CA, per thing group) and the devices at risk: expiring within the renewal window and offline',
        tags: ['audits'],
        querystring: {
          type: 'object',
          properties: {
            weeks: { type: 'integer', minimum: 1, maximum: 260, default: 52 },
            renewalWindowDays: { type: 'integer', minimum: 1, maximum: 365, default: 28 },
            offlineDays: { type: 'integer', minimum: 1, maximum: 365, default: 7 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string', format: 'date-time' },
              weeks: { type: 'integer' },
              total: weekly,
              byCa: { type: 'object', additionalProperties: weekly },
              byGroup: { type: 'object', additionalProperties: weekly },
              atRisk: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { thing: { type: ['string', 'null'] }, certificateId: { type: 'string' }, notAfter: { type: 'string', format: 'date-time' }, lastSeen: { type: ['string', 'null'], format: 'date-time' } },
                },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const f = await forecast({ certificates: s.store, cas: s.store, groups: s.store, connections: s.store, now: s.now }, req.query);
      return {
        ...f,
        from: f.from.toISOString(),
        atRisk: f.atRisk.map((r) => ({ ...r, notAfter: r.notAfter.toISOString(), lastSeen: r.lastSeen?.toISOString() ?? null })),
      };
    },
  );
}
