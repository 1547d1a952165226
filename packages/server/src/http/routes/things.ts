/** /api/v1/things */
import type { FastifyInstance } from 'fastify';
import { CertfleetError } from '../../errors.js';
import { checkAttributes, checkThingName } from '../../registry/things.js';
import type { Services } from '../../services.js';
import { pageQuery, pageSchema } from './paging.js';
import { problemSchema, thingSchema, thingView } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator', 'provisioner'] as const;

export function thingRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name: string; attributes?: Record<string, string> } }>(
    '/api/v1/things',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Create a thing (a device)',
        tags: ['things'],
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, attributes: { type: 'object', additionalProperties: { type: 'string' } } },
        },
        response: { 201: thingSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const thing = await s.store.createThing({ name: checkThingName(req.body.name), attributes: checkAttributes(req.body.attributes) });
      return reply.code(201).send(thingView(thing));
    },
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/things',
    {
      config: { scopes: READ },
      schema: { summary: 'List things', tags: ['things'], querystring: pageQuery, response: { 200: pageSchema(thingSchema) } },
    },
    async (req) => {
      const page = await s.store.listThings({ limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(thingView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/things/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a thing', tags: ['things'], response: { 200: thingSchema, '4xx': problemSchema } } },
    async (req) => {
      const thing = await s.store.getThing(req.params.name);
      if (!thing) throw new CertfleetError('not-found', `no thing named ${req.params.name}`);
      return thingView(thing);
    },
  );
}
