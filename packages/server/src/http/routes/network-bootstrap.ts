/**
 * Bootstrap by network identity (provisioning/network-bootstrap.ts): a
 * gateway, authenticated by its own certificate as the TLS client
 * certificate on the api port (admitted as by the broker, as fleet
 * provisioning's HTTPS routes), asks for a device's certificate on the
 * strength of the device's IMSI or IMEI. Bearer tokens play no part.
 */
import type { FastifyInstance } from 'fastify';
import { Admission, peerChain } from '../../broker/index.js';
import { CertfleetError } from '../../errors.js';
import type { Services } from '../../services.js';
import { problemSchema } from './views.js';

const str = { type: 'string' } as const;

export function networkBootstrapRoutes(app: FastifyInstance, s: Services): void {
  const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now });
  app.post<{ Body: unknown }>(
    '/api/v1/network-bootstrap',
    {
      config: { scopes: 'public' },
      schema: {
        summary: 'Gateways: a device certificate for the device whose IMSI or IMEI the gateway asserts (mutual TLS with a certificate of a thing with certfleet.role=gateway)',
        tags: ['provisioning'],
        security: [],
        body: {
          type: 'object',
          description: '{ networkIdentity: { type: "imsi" | "imei", value }, csr: PEM, template, parameters? } (checked by the handler, which names the offending field)',
          additionalProperties: true,
        },
        response: {
          201: { type: 'object', properties: { thingName: str, certificateId: str, certificatePem: str, chainPem: str, deviceConfiguration: { type: 'object', additionalProperties: true } } },
          '4xx': problemSchema,
        },
      },
    },
    async (req, reply) => {
      const admitted = await admission.admit(peerChain(req.raw.socket));
      if (!admitted.ok) throw new CertfleetError('unauthorized', `a gateway certificate is required as the TLS client certificate (${admitted.reason}: ${admitted.detail})`);
      // An authenticated use of a re-enrolled gateway certificate retires the one it replaced.
      await s.est.grace.used(admitted.certificateId);
      return reply.code(201).send(await s.est.networkBootstrap.bootstrap(admitted.certificateId, req.body));
    },
  );
}
