/**
 * The operator API (HTTPS on the api port): /api/v1 and its OpenAPI
 * document. Built as a Fastify instance so tests drive it with inject().
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import type { Services } from '../services.js';
import { registerAuth } from './auth.js';
import { problemHandler } from './problem.js';
import { caRoutes } from './routes/cas.js';
import { certificateRoutes } from './routes/certificates.js';
import { batchRoutes } from './routes/batches.js';
import { thingRoutes } from './routes/things.js';
import { tokenRoutes } from './routes/tokens.js';
import { auditLogRoutes } from './routes/audit-log.js';
import { auditRoutes } from './routes/audits.js';
import { findingRoutes } from './routes/findings.js';
import { issuerRotationRoutes } from './routes/issuer-rotation.js';
import { trustBundleRoutes } from './routes/trust-bundle.js';
import { groupRoutes } from './routes/groups.js';
import { policyRoutes } from './routes/policies.js';
import { provisioningRoutes } from './routes/provisioning.js';
import { webhookRoutes } from './routes/webhooks.js';
import { estRoutes } from './routes/est.js';
import { campaignRoutes } from './routes/campaigns.js';
import { renewExpiredRoutes } from './routes/renew-expired.js';
import { enrollmentSecretRoutes } from './routes/enrollment-secrets.js';
import { networkBootstrapRoutes } from './routes/network-bootstrap.js';

export interface ApiOptions {
  readonly https?: { key: string; cert: string };
  readonly logger?: FastifyServerOptions['logger'];
  /** Largest request body accepted (default 64 KiB: a CSR is a few KiB). */
  readonly bodyLimit?: number;
}

export async function buildApi(s: Services, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    // A client certificate is asked for, never required: operators use bearer tokens; devices
    // provisioning over HTTPS present their claim certificate, which the route itself admits.
    ...(opts.https ? { https: { ...opts.https, requestCert: true, rejectUnauthorized: false } } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  } as FastifyServerOptions);

  app.setErrorHandler(problemHandler);
  app.setNotFoundHandler((req, reply) => problemHandler(Object.assign(new Error(`no route ${req.method} ${req.url}`), { statusCode: 404 }), req, reply));
  // Only JSON bodies are parsed; any other content type is refused with 415 before a handler runs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('request body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'certfleet API', version: '1', description: 'Certificate identity for IoT fleets. Errors are RFC 9457 problem details with a stable `code`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  registerAuth(app, s.tokens);
  thingRoutes(app, s);
  certificateRoutes(app, s);
  batchRoutes(app, s);
  caRoutes(app, s);
  tokenRoutes(app, s);
  groupRoutes(app, s);
  policyRoutes(app, s);
  auditLogRoutes(app, s);
  provisioningRoutes(app, s);
  webhookRoutes(app, s);
  auditRoutes(app, s);
  findingRoutes(app, s);
  issuerRotationRoutes(app, s);
  trustBundleRoutes(app, s);
  campaignRoutes(app, s);
  renewExpiredRoutes(app, s);
  enrollmentSecretRoutes(app, s);
  networkBootstrapRoutes(app, s);
  await app.register(estRoutes(s));
  app.get('/api/v1/openapi.json', { config: { scopes: 'public' }, schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { config: { scopes: 'public' }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  return app;
}
