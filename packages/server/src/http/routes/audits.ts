/** /api/v1/audits: run the fleet audits on demand. */
import type { FastifyInstance } from 'fastify';
import { runAudit, type Finding } from '../../lifecycle/audits.js';
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
              summary: { type: 'object', additionalProperties: { type: 'integer' } },
              findings: { type: 'array', items: findingSchema },
            },
          },
        },
      },
    },
    async (req) => {
      const runAt = s.now();
      const findings: Finding[] = await runAudit({ cas: s.store, certificates: s.store, policies: s.store, connections: s.store, now: s.now }, req.body ?? {});
      const summary: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
      for (const f of findings) summary[f.severity] = (summary[f.severity] ?? 0) + 1;
      return { runAt: runAt.toISOString(), summary, findings };
    },
  );
}
