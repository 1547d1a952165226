/** /api/v1/batches: manufacturing batches, many device certificates per request. */
import type { FastifyInstance } from 'fastify';
import { MAX_BATCH_ITEMS, type BatchItem } from '../../registry/bulk-issuance.js';
import type { Services } from '../../services.js';
import { actorOf } from './actor.js';
import { problemSchema } from './views.js';

const ISSUE = ['operator', 'provisioner'] as const;
/** A P-256 CSR is ~0.5 KiB of PEM, an RSA-3072 one ~1.5 KiB: 1,000 of the largest fit well within this. */
const BATCH_BODY_LIMIT = 8 * 1024 * 1024;

const str = { type: 'string' } as const;

const itemResultSchema = {
  type: 'object',
  description: 'an issued (or, for a resumed batch, found again) certificate, or the error of this item alone',
  properties: {
    thing: str,
    certificateId: str,
    serial: str,
    certificatePem: str,
    fingerprint: { type: 'string', description: 'SHA-256 of the DER, lowercase hex' },
    reused: { type: 'boolean', description: 'the thing already held this certificate for this key (the batch was answered before)' },
    chainPem: { type: 'string', description: 'only when it differs from the batch chain' },
    error: { type: 'object', properties: { code: str, detail: str } },
  },
} as const;

interface Body {
  items: BatchItem[];
  profile?: string;
  validityDays?: number;
  policies?: string[];
  groups?: string[];
  issuer?: string;
}

export function batchRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: Body }>(
    '/api/v1/batches/issue',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      config: { scopes: ISSUE },
      schema: {
        summary: `Sign up to ${MAX_BATCH_ITEMS} CSRs, each for its thing (created if missing, reused if present); a bad item fails alone. Every certificate answered is stored first; a thing already holding a certificate for the same key gets that one back`,
        tags: ['certificates'],
        body: {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: {
            items: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_BATCH_ITEMS,
              items: {
                type: 'object',
                required: ['thing', 'csr'],
                additionalProperties: false,
                properties: {
                  thing: { type: 'string', maxLength: 128 },
                  csr: { type: 'string', maxLength: 16384 },
                  attributes: { type: 'object', additionalProperties: { type: 'string', maxLength: 800 } },
                },
              },
            },
            profile: { type: 'string', enum: ['device', 'server'] },
            validityDays: { type: 'integer', minimum: 1, maximum: 3650 },
            policies: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 128 } },
            groups: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 128 } },
            issuer: { type: 'string', maxLength: 64, description: 'issuing CA id or name; the default issuing CA when absent' },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              items: { type: 'array', items: itemResultSchema },
              chainPem: { type: 'string', description: 'issuing CA first, root last; once per batch' },
              caPem: { type: 'string', description: 'the root devices trust' },
            },
          },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const result = await s.bulkIssuance.issue({
        items: b.items,
        actor: actorOf(req),
        ...(b.profile !== undefined ? { profile: b.profile } : {}),
        ...(b.validityDays !== undefined ? { validityDays: b.validityDays } : {}),
        ...(b.policies !== undefined ? { policies: b.policies } : {}),
        ...(b.groups !== undefined ? { groups: b.groups } : {}),
        ...(b.issuer !== undefined ? { issuer: b.issuer } : {}),
      });
      return reply.code(201).send(result);
    },
  );
}
