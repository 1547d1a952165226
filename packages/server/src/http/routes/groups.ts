/** /api/v1/thing-groups */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { ThingGroupRecord } from '../../store/index.js';
import { actorOf } from './actor.js';
import { pageQuery, pageSchema } from './paging.js';
import { problemSchema, thingSchema, thingView } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator'] as const;
const attributes = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const groupSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    parent: { type: ['string', 'null'] },
    description: { type: ['string', 'null'] },
    attributes,
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const view = (g: ThingGroupRecord) => ({ name: g.name, parent: g.parentName, description: g.description, attributes: g.attributes, createdAt: g.createdAt.toISOString() });
const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } } as const;

export function groupRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name: string; parent?: string | null; description?: string; attributes?: Record<string, string> } }>(
    '/api/v1/thing-groups',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Create a thing group, optionally under a parent (nested groups inherit policies downwards)',
        tags: ['groups'],
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: { type: 'string', maxLength: 128 }, parent: { type: ['string', 'null'], maxLength: 128 }, description: { type: 'string', maxLength: 2048 }, attributes },
        },
        response: { 201: groupSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(view(await s.things.createGroup(actorOf(req), req.body))),
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/thing-groups',
    { config: { scopes: READ }, schema: { summary: 'List thing groups', tags: ['groups'], querystring: pageQuery, response: { 200: pageSchema(groupSchema) } } },
    async (req) => {
      const page = await s.things.listGroups({ limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(view), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/thing-groups/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a thing group', tags: ['groups'], params: nameParams, response: { 200: groupSchema, '4xx': problemSchema } } },
    async (req) => view(await s.things.getGroup(req.params.name)),
  );

  app.patch<{ Params: { name: string }; Body: { parent: string | null } }>(
    '/api/v1/thing-groups/:name',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Move a group under another parent (null: make it a root); cycles and depths over 16 are refused',
        tags: ['groups'],
        params: nameParams,
        body: { type: 'object', required: ['parent'], additionalProperties: false, properties: { parent: { type: ['string', 'null'], maxLength: 128 } } },
        response: { 200: groupSchema, '4xx': problemSchema },
      },
    },
    async (req) => view(await s.things.moveGroup(actorOf(req), req.params.name, req.body.parent)),
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/thing-groups/:name',
    { config: { scopes: WRITE }, schema: { summary: 'Delete a thing group without child groups', tags: ['groups'], params: nameParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.things.deleteGroup(actorOf(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { name: string }; Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/thing-groups/:name/things',
    { config: { scopes: READ }, schema: { summary: 'Direct members of a group', tags: ['groups'], params: nameParams, querystring: pageQuery, response: { 200: pageSchema(thingSchema), '4xx': problemSchema } } },
    async (req) => {
      await s.things.getGroup(req.params.name);
      const page = await s.store.listGroupMembers(req.params.name, { limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(thingView), ...(page.next ? { next: page.next } : {}) };
    },
  );

  const memberParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 }, thing: { type: 'string', maxLength: 128 } } } as const;
  app.put<{ Params: { name: string; thing: string } }>(
    '/api/v1/thing-groups/:name/things/:thing',
    { config: { scopes: WRITE }, schema: { summary: 'Add a thing to a group', tags: ['groups'], params: memberParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.things.addThing(actorOf(req), req.params.name, req.params.thing);
      return reply.code(204).send();
    },
  );
  app.delete<{ Params: { name: string; thing: string } }>(
    '/api/v1/thing-groups/:name/things/:thing',
    { config: { scopes: WRITE }, schema: { summary: 'Remove a thing from a group', tags: ['groups'], params: memberParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.things.removeThing(actorOf(req), req.params.name, req.params.thing);
      return reply.code(204).send();
    },
  );
}
