/** /api/v1/cas */
import type { FastifyInstance } from 'fastify';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '@certfleet/pki';
import type { Services } from '../../services.js';
import { CertfleetError } from '../../errors.js';
import { checkProvisioningTemplate, JIT_TEMPLATE_MAX_LENGTH } from '../../provisioning/jit.js';
import { EXTERNAL_CA_MODES } from '../../registry/external-cas.js';
import type { ExternalCaMode } from '../../store/index.js';
import { actorOf } from './actor.js';
import { caSchema, caView, problemSchema } from './views.js';

const READ = ['operator', 'auditor', 'provisioner'] as const;

const registrationCodeSchema = {
  type: 'object',
  properties: { registrationCode: { type: 'string', description: '32 hex characters' }, expiresAt: { type: 'string', format: 'date-time' } },
} as const;

interface RegisterBody {
  caCertificate: string;
  verificationCertificate?: string;
  mode?: ExternalCaMode;
  name?: string;
  autoRegistration?: boolean;
  provisioningTemplate?: string | null;
  status?: 'active' | 'inactive';
}

export function caRoutes(app: FastifyInstance, s: Services): void {
  app.get(
    '/api/v1/cas',
    { config: { scopes: READ }, schema: { summary: 'List certificate authorities', tags: ['cas'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: caSchema } } } } } },
    async () => ({ items: (await s.authorities.list()).map((c) => caView(c)) }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/cas/:id',
    { config: { scopes: READ }, schema: { summary: 'Get a CA by id or name', tags: ['cas'], params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } }, response: { 200: caSchema, '4xx': problemSchema } } },
    async (req) => {
      const ca = await s.authorities.get(req.params.id);
      const mode = ca.kind === 'external' ? await s.externalCas.modeOf(ca.id) : undefined;
      return { ...caView(ca, await s.authorities.provisioning(ca.id)), ...(mode ? { registrationMode: mode } : {}), renewAfterExpiryDays: await s.rotation.afterExpiry.days(ca.id) };
    },
  );

  app.get(
    '/api/v1/cas/registration-code',
    {
      config: { scopes: ['admin', 'operator'] },
      schema: {
        summary: 'A registration code for proof of possession of an outside CA key: sign a verification certificate whose subject CN is this code with the CA key, then POST /api/v1/cas/register. Single use, for this token only, valid one hour',
        tags: ['cas'],
        response: { 200: registrationCodeSchema, '4xx': problemSchema },
      },
    },
    async (req) => {
      const c = await s.registrationCodes.issue(actorOf(req));
      return { registrationCode: c.registrationCode, expiresAt: c.expiresAt.toISOString() };
    },
  );

  app.post<{ Body: RegisterBody }>(
    '/api/v1/cas/register',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary:
          'Register a CA made outside certfleet (kind external; certfleet never signs with it). Mode default proves possession of its key with a verification certificate; sni-only registers without. The CA must be a self-signed root or issued by a registered CA',
        tags: ['cas'],
        body: {
          type: 'object',
          required: ['caCertificate'],
          additionalProperties: false,
          properties: {
            caCertificate: { type: 'string', maxLength: 65536, description: 'PEM' },
            verificationCertificate: { type: 'string', maxLength: 65536, description: 'PEM, signed with the CA key, subject CN = a registration code; required in mode default' },
            mode: { type: 'string', enum: [...EXTERNAL_CA_MODES] },
            name: { type: 'string', maxLength: 64 },
            autoRegistration: { type: 'boolean' },
            provisioningTemplate: { type: ['string', 'null'], maxLength: JIT_TEMPLATE_MAX_LENGTH, description: 'as in PATCH /api/v1/cas/{id}' },
            status: { type: 'string', enum: ['active', 'inactive'] },
          },
        },
        response: { 201: caSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.provisioningTemplate !== undefined) checkProvisioningTemplate(b.provisioningTemplate);
      const r = await s.externalCas.register(actorOf(req), {
        caCertificate: b.caCertificate,
        ...(b.verificationCertificate !== undefined ? { verificationCertificate: b.verificationCertificate } : {}),
        ...(b.mode !== undefined ? { mode: b.mode } : {}),
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.autoRegistration !== undefined ? { autoRegistration: b.autoRegistration } : {}),
        ...(b.provisioningTemplate !== undefined ? { provisioningTemplate: b.provisioningTemplate } : {}),
        ...(b.status !== undefined ? { status: b.status } : {}),
      });
      return reply.code(201).send({ ...caView(r.record, r.provisioning), registrationMode: r.mode });
    },
  );

  app.post<{ Body: { name: string; subject?: string; keyAlgorithm?: KeyAlgorithm; parent?: string; validityDays?: number; pathLen?: number | null } }>(
    '/api/v1/cas',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Create a root CA, or an intermediate under `parent`',
        tags: ['cas'],
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', maxLength: 64 },
            subject: { type: 'string', maxLength: 512, description: 'e.g. CN=Acme Device CA,O=Acme' },
            keyAlgorithm: { type: 'string', enum: [...KEY_ALGORITHMS] },
            parent: { type: 'string', maxLength: 64, description: 'parent CA id or name: makes an intermediate' },
            validityDays: { type: 'integer', minimum: 1, maximum: 10958 },
            pathLen: { type: ['integer', 'null'], minimum: 0, maximum: 8 },
          },
        },
        response: { 201: caSchema, '4xx': problemSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const base = {
        name: b.name,
        ...(b.subject ? { subject: b.subject } : {}),
        ...(b.keyAlgorithm ? { keyAlgorithm: b.keyAlgorithm } : {}),
        ...(b.validityDays ? { validityDays: b.validityDays } : {}),
      };
      const rec = b.parent
        ? await s.authorities.createIntermediate({ ...base, parentId: (await s.authorities.get(b.parent)).id, ...(b.pathLen !== undefined ? { pathLen: b.pathLen } : {}) }, actorOf(req))
        : await s.authorities.createRoot(base, actorOf(req));
      return reply.code(201).send(caView(rec));
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    '/api/v1/cas/:id/revoke',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: "Revoke a CA (final): nothing under it is admitted, OCSP answers revoked, its parent's CRL lists it",
        tags: ['cas'],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } },
        body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 32 } } },
        response: { 200: caSchema, '4xx': problemSchema },
      },
    },
    async (req) => caView(await s.revoker.revokeCa(actorOf(req), req.params.id, req.body?.reason ?? 'cACompromise')),
  );

  app.patch<{ Params: { id: string }; Body: { status?: 'active' | 'inactive' | 'revoked'; autoRegistration?: boolean; provisioningTemplate?: string | null; crlShards?: number; renewAfterExpiryDays?: number } }>(
    '/api/v1/cas/:id',
    {
      config: { scopes: ['admin'] },
      schema: {
        summary: 'Change a CA: status (revoked is final; the broker stops admitting under an inactive CA at once), auto-registration, provisioning template',
        tags: ['cas'],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } },
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            status: { type: 'string', enum: ['active', 'inactive', 'revoked'] },
            autoRegistration: { type: 'boolean' },
            provisioningTemplate: {
              type: ['string', 'null'],
              maxLength: JIT_TEMPLATE_MAX_LENGTH,
              description: 'a JIT template as JSON {thingName, attributes?, groups?, policies?} (provisioning/jit.ts) or a provisioning template name; null clears it',
            },
            crlShards: { type: 'integer', minimum: 1, maximum: 4096, description: 'partition the CRL; only before the CA has issued certificates' },
            renewAfterExpiryDays: { type: 'integer', minimum: 0, maximum: 3650, description: 'days after expiry a device certificate of this CA may still renew (POST /api/v1/renew-expired); 0, the default, is off' },
          },
        },
        response: { 200: caSchema, '4xx': problemSchema },
      },
    },
    async (req) => {
      const b = req.body;
      const actor = actorOf(req);
      let ca = await s.authorities.get(req.params.id);
      // Refuse before writing anything, so a refused status never leaves the other fields half-applied.
      if (b.status && ca.status === 'revoked' && b.status !== 'revoked') throw new CertfleetError('invalid-state', `CA ${ca.name} is revoked, which is final`);
      if (b.provisioningTemplate !== undefined) checkProvisioningTemplate(b.provisioningTemplate);
      if (b.autoRegistration !== undefined || b.provisioningTemplate !== undefined) {
        await s.authorities.updateProvisioning(actor, ca.id, {
          ...(b.autoRegistration !== undefined ? { autoRegistration: b.autoRegistration } : {}),
          ...(b.provisioningTemplate !== undefined ? { provisioningTemplate: b.provisioningTemplate } : {}),
        });
      }
      if (b.crlShards !== undefined) await s.authorities.setCrlShards(actor, ca.id, b.crlShards, await s.store.countCertificates({ issuerId: ca.id }));
      if (b.renewAfterExpiryDays !== undefined) await s.rotation.afterExpiry.setDays(actor, ca.id, b.renewAfterExpiryDays);
      if (b.status === 'revoked') ca = await s.revoker.revokeCa(actor, ca.id);
      else if (b.status) ca = await s.authorities.setStatus(actor, ca.id, b.status);
      return { ...caView(ca, await s.authorities.provisioning(ca.id)), renewAfterExpiryDays: await s.rotation.afterExpiry.days(ca.id) };
    },
  );

}
