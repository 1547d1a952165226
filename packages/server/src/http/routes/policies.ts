/** /api/v1/policies */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import type { PolicyAttachment, PolicyRecord, PolicyVersionRecord } from '../../store/index.js';
import { actorOf } from './actor.js';
import { pageQuery, pageSchema } from './paging.js';
import { problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const WRITE = ['operator'] as const;
const iso = { type: 'string', format: 'date-time' } as const;

/** The policy document's own schema is checked by registry/policy (so its errors name the exact field). */
const documentSchema = { type: 'object', description: '{ "statements": [ { "effect", "actions", "resources" } ] }', additionalProperties: true } as const;
const versionSummary = { type: 'object', properties: { version: { type: 'integer' }, isDefault: { type: 'boolean' }, createdAt: iso } } as const;
const policySchema = {
  type: 'object',
  properties: { name: { type: 'string' }, defaultVersion: { type: 'integer' }, versions: { type: 'array', items: versionSummary }, document: documentSchema, createdAt: iso, updatedAt: iso },
} as const;
const versionSchema = { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' }, isDefault: { type: 'boolean' }, document: documentSchema, createdAt: iso } } as const;
const targetBody = {
  type: 'object',
  additionalProperties: false,
  properties: { certificate: { type: 'string', maxLength: 64 }, group: { type: 'string', maxLength: 128 } },
} as const;
const targetSchema = { type: 'object', properties: { policy: { type: 'string' }, targetType: { type: 'string', enum: ['certificate', 'group'] }, target: { type: 'string' } } } as const;
const attachmentSchema = { type: 'object', properties: { ...targetSchema.properties, createdAt: iso } } as const;
const nameParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } } as const;
const versionParams = { type: 'object', properties: { name: { type: 'string', maxLength: 128 }, version: { type: 'integer', minimum: 1 } } } as const;

const policyView = (p: PolicyRecord) => ({
  name: p.name,
  defaultVersion: p.defaultVersion,
  versions: p.versions.map((v) => ({ version: v.version, isDefault: v.version === p.defaultVersion, createdAt: v.createdAt.toISOString() })),
  document: p.document,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});
const versionView = (v: PolicyVersionRecord, defaultVersion?: number) => ({
  name: v.policyName,
  version: v.version,
  isDefault: defaultVersion === undefined ? v.isDefault : v.version === defaultVersion,
  document: v.document,
  createdAt: v.createdAt.toISOString(),
});
const attachmentView = (a: PolicyAttachment) => ({ policy: a.policyName, targetType: a.target.type, target: a.target.id, createdAt: a.createdAt.toISOString() });

export function policyRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { name: string; document: unknown } }>(
    '/api/v1/policies',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Create a policy (version 1, the default)',
        tags: ['policies'],
        body: { type: 'object', required: ['name', 'document'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 128 }, document: documentSchema } },
        response: { 201: policySchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(policyView(await s.policies.create(actorOf(req), req.body.name, req.body.document))),
  );

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/policies',
    {
      config: { scopes: READ },
      schema: {
        summary: 'List policies',
        tags: ['policies'],
        querystring: pageQuery,
        response: { 200: pageSchema({ type: 'object', properties: { name: { type: 'string' }, defaultVersion: { type: 'integer' }, updatedAt: iso } }) },
      },
    },
    async (req) => {
      const page = await s.policies.list({ limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map((p) => ({ name: p.name, defaultVersion: p.defaultVersion, updatedAt: p.updatedAt.toISOString() })), ...(page.next ? { next: page.next } : {}) };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/policies/:name',
    { config: { scopes: READ }, schema: { summary: 'Get a policy with its default document and versions', tags: ['policies'], params: nameParams, response: { 200: policySchema, '4xx': problemSchema } } },
    async (req) => policyView(await s.policies.get(req.params.name)),
  );

  app.delete<{ Params: { name: string } }>(
    '/api/v1/policies/:name',
    { config: { scopes: WRITE }, schema: { summary: 'Delete a policy that is attached to nothing', tags: ['policies'], params: nameParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.policies.delete(actorOf(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { name: string }; Body: { document: unknown; setDefault?: boolean } }>(
    '/api/v1/policies/:name/versions',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Add a version (at most 5 are kept: delete one first)',
        tags: ['policies'],
        params: nameParams,
        body: { type: 'object', required: ['document'], additionalProperties: false, properties: { document: documentSchema, setDefault: { type: 'boolean' } } },
        response: { 201: versionSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(versionView(await s.policies.createVersion(actorOf(req), req.params.name, req.body.document, req.body.setDefault ?? false))),
  );

  app.get<{ Params: { name: string; version: number } }>(
    '/api/v1/policies/:name/versions/:version',
    { config: { scopes: READ }, schema: { summary: 'Get one version of a policy', tags: ['policies'], params: versionParams, response: { 200: versionSchema, '4xx': problemSchema } } },
    async (req) => versionView(await s.policies.getVersion(req.params.name, req.params.version)),
  );

  app.put<{ Params: { name: string }; Body: { version: number } }>(
    '/api/v1/policies/:name/default-version',
    {
      config: { scopes: WRITE },
      schema: {
        summary: 'Make a version the default (what devices are evaluated against)',
        tags: ['policies'],
        params: nameParams,
        body: { type: 'object', required: ['version'], additionalProperties: false, properties: { version: { type: 'integer', minimum: 1 } } },
        response: { 200: policySchema, '4xx': problemSchema },
      },
    },
    async (req) => {
      await s.policies.setDefault(actorOf(req), req.params.name, req.body.version);
      return policyView(await s.policies.get(req.params.name));
    },
  );

  app.delete<{ Params: { name: string; version: number } }>(
    '/api/v1/policies/:name/versions/:version',
    { config: { scopes: WRITE }, schema: { summary: 'Delete a version that is not the default', tags: ['policies'], params: versionParams, response: { '4xx': problemSchema } } },
    async (req, reply) => {
      await s.policies.deleteVersion(actorOf(req), req.params.name, req.params.version);
      return reply.code(204).send();
    },
  );

  for (const op of ['attach', 'detach'] as const) {
    app.post<{ Params: { name: string }; Body: { certificate?: string; group?: string } }>(
      `/api/v1/policies/:name/${op}`,
      {
        config: { scopes: WRITE },
        schema: {
          summary: `${op === 'attach' ? 'Attach the policy to' : 'Detach the policy from'} a certificate or a thing group`,
          tags: ['policies'],
          params: nameParams,
          body: targetBody,
          response: { 200: targetSchema, '4xx': problemSchema },
        },
      },
      async (req) => {
        const t = await s.policies[op](actorOf(req), req.params.name, req.body);
        return { policy: req.params.name, targetType: t.type, target: t.id };
      },
    );
  }

  app.get<{ Params: { name: string }; Querystring: { limit?: number; cursor?: string } }>(
    '/api/v1/policies/:name/attachments',
    { config: { scopes: READ }, schema: { summary: 'Where a policy is attached', tags: ['policies'], params: nameParams, querystring: pageQuery, response: { 200: pageSchema(attachmentSchema), '4xx': problemSchema } } },
    async (req) => {
      await s.policies.get(req.params.name);
      const page = await s.policies.attachments(req.params.name, { limit: req.query.limit ?? 100, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { items: page.items.map(attachmentView), ...(page.next ? { next: page.next } : {}) };
    },
  );
}
