/** /api/v1/cas/{id}/cross-sign, …/cross-certificates, …/dependents, …/retire, /api/v1/cas/default-issuer: issuer rotation. */
import type { FastifyInstance } from 'fastify';
import { encodePem } from '@certfleet/pki';
import { StillDependedOn } from '../../lifecycle/issuer-rotation.js';
import type { CrossCertificateRecord } from '../../store/index.js';
import type { Services } from '../../services.js';
import { toProblem } from '../problem.js';
import { actorOf } from './actor.js';
import { caSchema, caView, problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;
const params = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } as const;

const crossSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    caId: { type: 'string' },
    signedBy: { type: 'string' },
    serial: { type: 'string' },
    notBefore: { type: 'string', format: 'date-time' },
    notAfter: { type: 'string', format: 'date-time' },
    certificatePem: { type: 'string' },
  },
} as const;

const crossView = (x: CrossCertificateRecord) => ({
  id: x.id,
  caId: x.caId,
  signedBy: x.signedBy,
  serial: x.serial,
  notBefore: x.notBefore.toISOString(),
  notAfter: x.notAfter.toISOString(),
  certificatePem: encodePem('CERTIFICATE', x.der),
});

export function issuerRotationRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Params: { id: string }; Body: { by: string } }>(
    '/api/v1/cas/:id/cross-sign',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: "Cross-sign a CA (usually a new root) with an older root: the same subject and key, signed by `by`, served in chains so devices trusting only the old root accept the new CA's certificates",
        tags: ['cas'],
        params,
        body: { type: 'object', required: ['by'], additionalProperties: false, properties: { by: { type: 'string', maxLength: 64, description: 'the old root, id or name' } } },
        response: { 201: crossSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => reply.code(201).send(crossView(await s.issuerRotation.crossSign(actorOf(req), req.params.id, req.body.by))),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/cas/:id/cross-certificates',
    { config: { scopes: READ }, schema: { summary: 'The cross certificates of a CA', tags: ['cas'], params, response: { 200: { type: 'object', properties: { items: { type: 'array', items: crossSchema } } }, '4xx': problemSchema } } },
    async (req) => ({ items: (await s.issuerRotation.crossCertificates(req.params.id)).map(crossView) }),
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/api/v1/cas/:id/dependents',
    {
      config: { scopes: READ },
      schema: {
        summary: 'The active certificates that still depend on a CA (issued by it or by a CA below it), with their count',
        tags: ['cas'],
        params,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 1024 } } },
        response: {
          200: {
            type: 'object',
            properties: {
              count: { type: 'integer' },
              issuers: { type: 'array', items: { type: 'string' } },
              items: {
                type: 'array',
                items: { type: 'object', properties: { id: { type: 'string' }, serial: { type: 'string' }, issuerId: { type: 'string' }, thingName: { type: ['string', 'null'] }, subject: { type: 'string' }, notAfter: { type: 'string', format: 'date-time' } } },
              },
              next: { type: 'string' },
            },
          },
          '4xx': problemSchema,
        },
      },
    },
    async (req) => {
      const d = await s.issuerRotation.dependents(req.params.id, { limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      return { ...d, items: d.items.map((c) => ({ ...c, notAfter: c.notAfter.toISOString() })) };
    },
  );

  const defaultIssuerSchema = { type: 'object', properties: { ca: caSchema, previous: { type: ['string', 'null'], description: 'the CA that was the default issuer before' } } } as const;

  app.get(
    '/api/v1/cas/default-issuer',
    { config: { scopes: READ }, schema: { summary: 'The CA new certificates are issued from when a request names none', tags: ['cas'], response: { 200: { type: 'object', properties: { ca: caSchema } }, '4xx': problemSchema } } },
    async () => ({ ca: caView(await s.issuerRotation.defaultIssuer()) }),
  );

  app.put<{ Body: { caId: string } }>(
    '/api/v1/cas/default-issuer',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary:
          'Make an active intermediate CA made in certfleet the default issuer: certificate issuance, EST (and its cacerts), fleet provisioning, batches and the TLS certificate the node issues itself come from it from now on. 400 for a root or an external CA, 409 for an inactive, revoked or expired one',
        tags: ['cas'],
        body: { type: 'object', required: ['caId'], additionalProperties: false, properties: { caId: { type: 'string', minLength: 1, maxLength: 64, description: 'the CA, id or name' } } },
        response: { 200: defaultIssuerSchema, '4xx': problemSchema },
      },
    },
    async (req) => {
      const r = await s.issuerRotation.setDefaultIssuer(actorOf(req), req.body.caId);
      return { ca: caView(r.ca), previous: r.previous ?? null };
    },
  );

  app.post<{ Params: { id: string }; Body: { force?: boolean } | undefined }>(
    '/api/v1/cas/:id/retire',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Retire a CA (inactive: it signs nothing more and the broker admits nothing under it); 409 with `dependents` while active certificates depend on it, unless `force`; 409 while it is (or is above) the default issuer, even with `force`',
        tags: ['cas'],
        params,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { force: { type: 'boolean' } } },
        response: { 200: { type: 'object', properties: { ca: caSchema, dependents: { type: 'integer' } } }, '4xx': { ...problemSchema, properties: { ...problemSchema.properties, dependents: { type: 'integer' } } } },
      },
    },
    async (req, reply) => {
      try {
        const r = await s.issuerRotation.retire(actorOf(req), req.params.id, req.body?.force ?? false);
        return { ca: caView(r.ca), dependents: r.dependents };
      } catch (err) {
        if (!(err instanceof StillDependedOn)) throw err;
        // RFC 9457 §3.2: an extension member carries how many still depend.
        const problem = { ...toProblem(err, req.url), dependents: err.dependents };
        return reply.code(problem.status).type('application/problem+json').send(problem);
      }
    },
  );
}
