/**
 * POST /api/v1/renew-expired: renewal after expiry
 * (lifecycle/renewal-after-expiry.ts). Bearer tokens play no part
 * (`scopes: 'public'`): the expired certificate, sent as the TLS client
 * certificate, is the credential; the api port asks for a client
 * certificate and accepts any (an expired one too), and the TLS handshake
 * proves the device holds its key.
 *
 * A refusal for good (renewal after expiry off for its CA, expired too long
 * ago, unknown, revoked or deactivated, not chaining to an active CA) is a
 * 403 problem document with `reason` and `fallback: "claim"`: the device
 * provisions afresh by claim. A CSR that cannot renew it (other subject,
 * the old key) is a 400 with `reason`; a certificate that has not expired
 * is a 409 (`reason: "NotExpired"`: renew over MQTT or EST instead).
 */
import type { FastifyInstance } from 'fastify';
import { peerChain } from '../../broker/index.js';
import { CertfleetError } from '../../errors.js';
import { ExpiredCertificateRefusal } from '../../lifecycle/renewal-after-expiry.js';
import { RenewalRefusal } from '../../lifecycle/renewal.js';
import type { Services } from '../../services.js';
import { toProblem } from '../problem.js';
import { problemSchema } from './views.js';

/** Renewal refusals that no later request with this certificate can overcome. */
const FINAL = new Set(['CertificateNotActive', 'NotYourThing', 'RenewalAfterExpiryDisabled', 'ExpiredTooLongAgo']);

const refusalSchema = {
  ...problemSchema,
  properties: {
    ...problemSchema.properties,
    reason: { type: 'string', description: 'why: RenewalAfterExpiryDisabled, ExpiredTooLongAgo, NotExpired, SubjectMismatch, KeyReused, or the admission refusal (unknown-certificate, revoked-certificate, inactive-certificate, untrusted-chain…)' },
    fallback: { type: 'string', enum: ['claim'], description: 'present when this certificate can never renew: provision afresh by claim' },
  },
} as const;

export function renewExpiredRoutes(app: FastifyInstance, s: Services): void {
  app.post<{ Body: { csr: string } }>(
    '/api/v1/renew-expired',
    {
      config: { scopes: 'public' },
      schema: {
        summary: "Devices: renew an expired certificate, sent as the TLS client certificate, within its CA's renewAfterExpiryDays",
        tags: ['provisioning'],
        security: [],
        body: { type: 'object', required: ['csr'], additionalProperties: false, properties: { csr: { type: 'string', maxLength: 16_384, description: 'PEM: the same subject, a new key' } } },
        response: {
          201: { type: 'object', properties: { certificateId: { type: 'string' }, certificatePem: { type: 'string' }, chainPem: { type: 'string' } } },
          '4xx': refusalSchema,
        },
      },
    },
    async (req, reply) => {
      try {
        const r = await s.rotation.afterExpiry.renew(peerChain(req.raw.socket), req.body.csr);
        return await reply.code(201).send({ certificateId: r.certificateId, certificatePem: r.certificatePem, chainPem: r.chainPem });
      } catch (err) {
        const reason = err instanceof RenewalRefusal || err instanceof ExpiredCertificateRefusal ? err.reason : undefined;
        if (reason === undefined) throw err;
        const final = err instanceof ExpiredCertificateRefusal || FINAL.has(reason);
        // Every final refusal is a 403, whatever the finer code: the device switches on `fallback`.
        const problem = toProblem(final ? new CertfleetError('forbidden', (err as Error).message) : err, req.url);
        req.log.info({ code: problem.code, reason, detail: problem.detail }, 'renewal after expiry refused');
        return reply
          .code(problem.status)
          .type('application/problem+json')
          .send({ ...problem, reason, ...(final ? { fallback: 'claim' } : {}) });
      }
    },
  );
}
