/** /api/v1/audits/findings: stored audit findings, paged and exported. */
import type { FastifyInstance } from 'fastify';
import { CSV_COLUMNS, csvRow, DEFAULT_AUDIT_INTERVAL_HOURS, SETTING_AUDIT_INTERVAL } from '../../lifecycle/findings.js';
import { actorOf } from './actor.js';
import type { AuditFindingRecord } from '../../store/index.js';
import type { Services } from '../../services.js';
import { problemSchema } from './views.js';

const READ = ['auditor', 'operator'] as const;
const SEVERITIES = ['critical', 'high', 'medium', 'low'];

export const storedFindingSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    severity: { type: 'string' },
    reasonCode: { type: 'string' },
    resourceType: { type: 'string' },
    resource: { type: 'string' },
    message: { type: 'string' },
    mitigations: { type: 'array', items: { type: 'string' } },
    firstSeen: { type: 'string', format: 'date-time' },
    lastSeen: { type: 'string', format: 'date-time' },
    resolvedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export const findingView = (f: AuditFindingRecord) => ({
  id: f.id,
  severity: f.severity,
  reasonCode: f.reasonCode,
  resourceType: f.resourceType,
  resource: f.resource,
  message: f.message,
  mitigations: f.mitigations,
  firstSeen: f.firstSeen.toISOString(),
  lastSeen: f.lastSeen.toISOString(),
  resolvedAt: f.resolvedAt?.toISOString() ?? null,
});

const filters = {
  severity: { type: 'string', enum: SEVERITIES },
  reason: { type: 'string', maxLength: 64 },
  resolved: { type: 'boolean' },
} as const;

type Filters = { severity?: string; reason?: string; resolved?: boolean };
const query = (q: Filters) => ({
  ...(q.severity ? { severity: q.severity } : {}),
  ...(q.reason ? { reasonCode: q.reason } : {}),
  ...(q.resolved !== undefined ? { resolved: q.resolved } : {}),
});

export function findingRoutes(app: FastifyInstance, s: Services): void {
  app.get<{ Querystring: Filters & { limit: number; cursor?: string } }>(
    '/api/v1/audits/findings',
    {
      config: { scopes: READ },
      schema: {
        summary: 'Stored audit findings, open and resolved, with first and last seen',
        tags: ['audits'],
        querystring: { type: 'object', additionalProperties: false, properties: { ...filters, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 1024 } } },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: storedFindingSchema }, next: { type: 'string' } } }, '4xx': problemSchema },
      },
    },
    async (req) => {
      const page = await s.auditFindings.list({ ...query(req.query), limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { ...page, items: page.items.map(findingView) };
    },
  );

  app.get<{ Querystring: Filters & { format: 'csv' | 'json' } }>(
    '/api/v1/audits/findings/export',
    {
      config: { scopes: READ },
      schema: {
        summary: 'Every stored finding matching the filters, as CSV (RFC 4180) or a JSON array',
        tags: ['audits'],
        querystring: { type: 'object', additionalProperties: false, properties: { ...filters, format: { type: 'string', enum: ['csv', 'json'], default: 'json' } } },
      },
    },
    async (req, reply) => {
      const csv = req.query.format === 'csv';
      // Built page by page; a fleet's findings fit in memory as text long before they strain it.
      const parts: string[] = [csv ? CSV_COLUMNS.join(',') + '\r\n' : '['];
      let first = true;
      for await (const f of s.auditFindings.all(query(req.query))) {
        parts.push(csv ? csvRow(f) : `${first ? '' : ','}${JSON.stringify(findingView(f))}`);
        first = false;
      }
      if (!csv) parts.push(']');
      return reply
        .type(csv ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="findings.${csv ? 'csv' : 'json'}"`)
        .send(parts.join(''));
    },
  );

  const scheduleSchema = { type: 'object', properties: { intervalHours: { type: 'number' } } } as const;
  app.get(
    '/api/v1/audits/schedule',
    { config: { scopes: READ }, schema: { summary: 'How often `serve` runs the audit (hours; 0: never)', tags: ['audits'], response: { 200: scheduleSchema } } },
    async () => ({ intervalHours: Number((await s.store.getSetting(SETTING_AUDIT_INTERVAL)) ?? DEFAULT_AUDIT_INTERVAL_HOURS) }),
  );
  app.put<{ Body: { intervalHours: number } }>(
    '/api/v1/audits/schedule',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Set how often the audit runs (hours, 0 turns the schedule off); applies at once and after restarts',
        tags: ['audits'],
        body: { type: 'object', required: ['intervalHours'], additionalProperties: false, properties: { intervalHours: { type: 'number', minimum: 0, maximum: 8760 } } },
        response: { 200: scheduleSchema, '4xx': problemSchema },
      },
    },
    async (req) => {
      actorOf(req);
      await s.store.putSetting(SETTING_AUDIT_INTERVAL, String(req.body.intervalHours));
      s.auditFindings.schedule(req.body.intervalHours);
      return { intervalHours: req.body.intervalHours };
    },
  );
}
