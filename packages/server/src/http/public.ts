/**
 * The device-facing plain-HTTP listener (the http port): no authentication,
 * as RFC 5280 §4.2.1.13 and RFC 6960 expect of CRL and OCSP locations.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { ocspErrorResponse } from '@certfleet/pki';
import { brokerMetricsRegistry } from '../broker/index.js';
import type { Services } from '../services.js';
import { problemHandler } from './problem.js';

const OCSP_RESPONSE = 'application/ocsp-response';
/** An OCSP request for a handful of certificates is well under 1 KiB; anything near this is not one. */
const MAX_OCSP_REQUEST = 8 * 1024;

export async function buildPublic(s: Services): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: MAX_OCSP_REQUEST });
  app.setErrorHandler(problemHandler);
  app.setNotFoundHandler((req, reply) => problemHandler(Object.assign(new Error(`no route ${req.method} ${req.url}`), { statusCode: 404 }), req, reply));
  app.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // Every root a device should trust now: the current trust bundle (lifecycle/trust-bundle.ts), old and new roots during a rollover.
  app.get('/trust-bundle.pem', async (_req, reply) => {
    const pems = await s.trustBundles.pems(await s.trustBundles.current());
    return reply.type('application/x-pem-file').header('cache-control', 'public, max-age=300').send(pems.join(''));
  });

  // RFC 5280 §4.2.1.13: a DER CRL over HTTP, application/pkix-crl (RFC 2585 §4.2).
  const crl = async (issuerId: string, shard: number) => s.crls.crl(issuerId, shard);
  app.get<{ Params: { file: string } }>('/crl/:file', async (req, reply) => {
    const m = /^(ca-[0-9a-f]{16})\.crl$/.exec(req.params.file);
    if (!m) return reply.code(404).type('text/plain').send('no such CRL');
    return reply.type('application/pkix-crl').header('cache-control', 'public, max-age=60').send(await crl(m[1]!, 0));
  });
  app.get<{ Params: { issuer: string; file: string } }>('/crl/:issuer/:file', async (req, reply) => {
    const m = /^(\d{1,4})\.crl$/.exec(req.params.file);
    if (!m || !/^ca-[0-9a-f]{16}$/.test(req.params.issuer)) return reply.code(404).type('text/plain').send('no such CRL');
    return reply.type('application/pkix-crl').header('cache-control', 'public, max-age=60').send(await crl(req.params.issuer, Number(m[1])));
  });

  // RFC 6960 Appendix A.1: POST with application/ocsp-request, or GET with the base64 request in the path.
  app.post('/ocsp', async (req, reply) => {
    const body = req.body;
    const der = Buffer.isBuffer(body) ? await s.ocsp.respond(body) : ocspErrorResponse('malformedRequest');
    return reply.type(OCSP_RESPONSE).send(der);
  });
  app.get<{ Params: { '*': string } }>('/ocsp/*', async (req, reply) => {
    let der: Buffer;
    try {
      const b64 = decodeURIComponent(req.params['*']);
      der = /^[A-Za-z0-9+/=_-]+$/.test(b64) ? await s.ocsp.respond(Buffer.from(b64, 'base64')) : ocspErrorResponse('malformedRequest');
    } catch {
      der = ocspErrorResponse('malformedRequest');
    }
    return reply.type(OCSP_RESPONSE).header('cache-control', 'public, max-age=60').send(der);
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Prometheus text format: connections, admissions refused by reason, messages in and out.
  app.get('/metrics', async (_req, reply) => {
    const registry = brokerMetricsRegistry();
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  return app;
}
