/**
 * EST (RFC 7030) on the api port under /.well-known/est/ (DESIGN.md "API").
 * Bearer tokens play no part here (`scopes: 'public'`); each route
 * authenticates for itself:
 *
 * - cacerts, csrattrs: anyone (§4.1.1, §4.5.1);
 * - simpleenroll: a claim certificate as the TLS client certificate,
 *   admitted as by the broker; or HTTP Basic (RFC 7030 §3.2.3, RFC 7617)
 *   with a one-time enrollment secret's user name and secret
 *   (provisioning/enrollment-secrets.ts). API tokens are not taken here: an
 *   operator's credential does not belong on a device;
 * - simplereenroll: the current certificate as the TLS client certificate
 *   (registered, active, chaining to an active CA: the broker's Admission).
 *   Presenting a re-enrolled certificate is its first use: the one it
 *   replaces is revoked then (provisioning/reenrollment-grace.ts).
 *
 * Registered as an encapsulated plugin so the application/pkcs10 parser
 * applies to these routes only.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Admission, peerChain } from '../../broker/index.js';
import { CertfleetError } from '../../errors.js';
import { claimActor } from '../../provisioning/fleet-provisioning.js';
import { base64Lines, decodeEstBody, EstEnrollment, MAX_EST_BODY } from '../../provisioning/est.js';
import type { Actor } from '../../registry/actor.js';
import type { Services } from '../../services.js';

const BASE = '/.well-known/est';
const REALM = 'Basic realm="certfleet EST"';
const route = { config: { scopes: 'public' as const }, schema: { hide: true } };

/** RFC 7617 §2: base64 of `user-id:password`; the user id has no colon. */
function basicCredentials(req: FastifyRequest): { username: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** §4.2.1: application/pkcs10, base64 (the Content-Transfer-Encoding header is optional; only base64 is taken). */
function csrOf(req: FastifyRequest): Buffer {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/pkcs10') throw new CertfleetError('unsupported-media-type', 'EST enrollment takes Content-Type: application/pkcs10');
  const cte = req.headers['content-transfer-encoding'];
  if (typeof cte === 'string' && cte.trim().toLowerCase() !== 'base64') throw new CertfleetError('unsupported-media-type', 'EST bodies are base64 (Content-Transfer-Encoding: base64)');
  if (!Buffer.isBuffer(req.body)) throw new CertfleetError('malformed-csr', 'a base64 PKCS#10 certificate request is required');
  return decodeEstBody(req.body);
}

function unauthorized(reply: FastifyReply, detail: string): CertfleetError {
  void reply.header('www-authenticate', REALM);
  return new CertfleetError('unauthorized', detail);
}

const sendPkcs7 = (reply: FastifyReply, der: Buffer, certsOnly: boolean) =>
  reply
    .code(200)
    .header('content-type', certsOnly ? 'application/pkcs7-mime; smime-type=certs-only' : 'application/pkcs7-mime')
    .header('content-transfer-encoding', 'base64')
    .send(base64Lines(der));

export function estRoutes(s: Services): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.addContentTypeParser('application/pkcs10', { parseAs: 'buffer', bodyLimit: MAX_EST_BODY }, (_req, body, done) => done(null, body));
    const est = new EstEnrollment({
      authorities: s.authorities,
      issuance: s.issuance,
      certificates: s.certificates,
      reenrollments: s.store,
      grace: s.est.grace,
      bus: s.bus,
      now: s.now,
    });
    const admission = new Admission({ cas: s.store, certificates: s.store, now: s.now });

    /** simpleenroll's caller: a claim certificate, else a one-time enrollment secret over HTTP Basic. */
    type Enroller = { claim: Actor } | { secret: Awaited<ReturnType<typeof s.est.secrets.authenticate>> };
    const enroller = async (req: FastifyRequest, reply: FastifyReply): Promise<Enroller> => {
      const chain = peerChain(req.raw.socket);
      if (chain.length > 0) {
        const admitted = await admission.admit(chain);
        if (admitted.ok && (await s.fleet.claims.get(admitted.certificateId))) return { claim: claimActor(admitted.certificateId) };
      }
      const credentials = basicCredentials(req);
      if (credentials === undefined) throw unauthorized(reply, 'a claim certificate as TLS client certificate, or HTTP Basic with an enrollment secret, is required');
      try {
        return { secret: await s.est.secrets.authenticate(credentials.username, credentials.password) };
      } catch (err) {
        if (err instanceof CertfleetError && err.code === 'unauthorized') throw unauthorized(reply, err.message);
        throw err;
      }
    };

    app.get(`${BASE}/cacerts`, route, async (_req, reply) => sendPkcs7(reply, await est.caCertificates(), false));

    // §4.5.2: no attributes are asked for (any accepted key and signature will do).
    app.get(`${BASE}/csrattrs`, route, async (_req, reply) => reply.code(204).send());

    app.post(`${BASE}/simpleenroll`, route, async (req, reply) => {
      const who = await enroller(req, reply);
      const csr = csrOf(req);
      try {
        const { pkcs7 } = 'claim' in who ? await est.enroll(who.claim, csr) : await s.est.secrets.enroll(who.secret, csr);
        return sendPkcs7(reply, pkcs7, true);
      } catch (err) {
        // A secret spent by a concurrent request: 401 with the challenge, as any refused credential.
        if (err instanceof CertfleetError && err.code === 'unauthorized') throw unauthorized(reply, err.message);
        throw err;
      }
    });

    app.post(`${BASE}/simplereenroll`, route, async (req, reply) => {
      const admitted = await admission.admit(peerChain(req.raw.socket));
      if (!admitted.ok) throw unauthorized(reply, `the current certificate is required as the TLS client certificate (${admitted.reason}: ${admitted.detail})`);
      if (await s.fleet.claims.get(admitted.certificateId)) throw new CertfleetError('forbidden', 'a claim certificate enrolls (simpleenroll); it is not re-enrolled');
      const csr = csrOf(req);
      await s.est.grace.used(admitted.certificateId);
      // The device itself asks; the audit log names its current certificate.
      const actor: Actor = { id: `certificate:${admitted.certificateId}` };
      const { pkcs7 } = await est.reenroll(actor, admitted.certificateId, csr);
      return sendPkcs7(reply, pkcs7, true);
    });
  };
}
