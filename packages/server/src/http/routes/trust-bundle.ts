/** /api/v1/trust-bundle: the versioned bundle of roots devices trust, and who has acknowledged it. */
import type { FastifyInstance } from 'fastify';
import { RootStillNeeded } from '../../lifecycle/trust-bundle.js';
import type { Services } from '../../services.js';
import { toProblem } from '../problem.js';
import { actorOf } from './actor.js';
import { problemSchema } from './views.js';

const READ = ['operator', 'auditor'] as const;
const bundleSchema = { type: 'object', properties: { version: { type: 'integer' }, roots: { type: 'array', items: { type: 'string' } } } } as const;

export function trustBundleRoutes(app: FastifyInstance, s: Services): void {
  app.get(
    '/api/v1/trust-bundle',
    {
      config: { scopes: READ },
      schema: {
        summary: 'The current trust bundle: version, roots (ids and PEM), things with an active certificate that acknowledged it and that have not',
        tags: ['trust-bundle'],
        response: {
          200: {
            type: 'object',
            properties: {
              version: { type: 'integer' },
              roots: { type: 'array', items: { type: 'string' } },
              rootPems: { type: 'array', items: { type: 'string' } },
              things: { type: 'integer' },
              acknowledged: { type: 'integer' },
              pending: { type: 'integer' },
            },
          },
        },
      },
    },
    async () => s.trustBundles.status(),
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/api/v1/trust-bundle/pending',
    {
      config: { scopes: READ },
      schema: {
        summary: 'Things with an active certificate that have not acknowledged the current version',
        tags: ['trust-bundle'],
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 1024 } } },
        response: { 200: { type: 'object', properties: { version: { type: 'integer' }, items: { type: 'array', items: { type: 'string' } }, next: { type: 'string' } } }, '4xx': problemSchema },
      },
    },
    async (req) => s.trustBundles.pending({ limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) }),
  );

  app.post<{ Body: { caId: string } }>(
    '/api/v1/trust-bundle/roots',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Publish a root into the bundle (version + 1), sent retained to every thing with an active certificate',
        tags: ['trust-bundle'],
        body: { type: 'object', required: ['caId'], additionalProperties: false, properties: { caId: { type: 'string', maxLength: 64 } } },
        response: { 201: bundleSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(await s.trustBundles.addRoot(actorOf(req), req.body.caId)),
  );

  app.delete<{ Params: { caId: string }; Querystring: { force?: boolean } }>(
    '/api/v1/trust-bundle/roots/:caId',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Remove a root from the bundle; 409 with `pending` while things have not acknowledged a version holding a successor root, unless `force`',
        tags: ['trust-bundle'],
        params: { type: 'object', properties: { caId: { type: 'string', maxLength: 64 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean', default: false } } },
        response: { 200: { ...bundleSchema, properties: { ...bundleSchema.properties, pendingAtRemoval: { type: 'integer' } } }, '4xx': { ...problemSchema, properties: { ...problemSchema.properties, pending: { type: 'integer' } } } },
      },
    },
    async (req, reply) => {
      try {
        return await s.trustBundles.removeRoot(actorOf(req), req.params.caId, req.query.force ?? false);
      } catch (err) {
        if (!(err instanceof RootStillNeeded)) throw err;
        // RFC 9457 §3.2: an extension member carries how many things still need the root.
        const problem = { ...toProblem(err, req.url), pending: err.pending };
        return reply.code(problem.status).type('application/problem+json').send(problem);
      }
    },
  );
}
