/**
 * The device-facing plain-HTTP listener (the http port): no authentication,
 * as RFC 5280 §4.2.1.13 and RFC 6960 expect of CRL and OCSP locations.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { problemHandler } from './problem.js';

export async function buildPublic(s: Services): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  app.setErrorHandler(problemHandler);
  app.setNotFoundHandler((req, reply) => problemHandler(Object.assign(new Error(`no route ${req.method} ${req.url}`), { statusCode: 404 }), req, reply));

  // Every root a device should trust now: active roots, in creation order.
  app.get('/trust-bundle.pem', async (_req, reply) => {
    const roots = (await s.authorities.list()).filter((c) => c.kind === 'root' && c.status === 'active');
    const pems = await Promise.all(roots.map(async (r) => (await s.authorities.chain(r.id))[0]!.toPem()));
    return reply.type('application/x-pem-file').header('cache-control', 'public, max-age=300').send(pems.join(''));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}
