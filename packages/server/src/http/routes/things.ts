/** /api/v1/things */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { pageQuery, pageSchema } from './paging.js';
import { actorOf } from './actor.js';
import { certificateSchema, certificateView, problemSchema, thingSchema, thingView } from './views.js';

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
    async (req, reply) => reply.code(201).send(thingView(await s.things.createThing(actorOf(req), req.body.name, req.body.attributes))),
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

  const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } } as const;
  const detailSchema = {
    type: 'object',
    properties: {
      ...thingSchema.properties,
      groups: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, depth: { type: 'integer' } } } },
      certificates: { type: 'array', items: certificateSchema },
    },
  } as const;
  app.get<{ Params: { name: string } }>(
    '/api/v1/things/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a thing with its groups (and their ancestors) and certificates', tags: ['things'], params: nameParams, response: { 200: detailSchema, '4xx': problemSchema } } },
    async (req) => {
      const thing = await s.things.getThing(req.params.name);
      const certs = await s.store.listCertificates({ thing: thing.name, limit: 100 });
      return { ...thingView(thing), groups: thing.groups.map((g) => ({ name: g.name, depth: g.depth })), certificates: certs.items.map((c) => certificateView(c)) };
    },
  );

  app.patch<{ Params: { name: string }; Body: { attributes: Record<string, string> } }>(
    '/api/v1/things/:name',
    {
      config: { scopes: WRITE },
      schema: {
        summary: "Replace a thing's attributes",
        tags: ['things'],
        params: nameParams,
        body: { type: 'object', required: ['attributes'], additionalProperties: false, properties: { attributes: { type: 'object', additionalProperties: { type: 'string' } } } },
        response: { 200: thingSchema, '4xx': problemSchema },
      },
    },
    async (req) => thingView(await s.things.updateThing(actorOf(req), req.params.name, req.body.attributes)),
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/things/:name',
    { config: { scopes: ['operator'] }, schema: { summary: 'Delete a thing that holds no certificate', tags: ['things'], params: nameParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.things.deleteThing(actorOf(req), req.params.name);
      return reply.code(204).send();
    },
  );
}
