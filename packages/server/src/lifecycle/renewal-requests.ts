/**
 * Renewal's MQTT edge (docs/device-protocol.md): the broker hands over a
 * request published on `$certfleet/things/{thing}/certificate/renew` or
 * `…/confirm` (authorization.ts has already made sure `{thing}` is the
 * connection's own), this parses it, calls Renewals, and turns the outcome
 * into the `…/accepted` body or the `…/rejected`
 * `{ statusCode, errorCode, errorMessage }`.
 */
import { thingOfTopic, thingRequestFilter, thingTopicSuffix, type DeviceAnswer, type DeviceRequest, type RequestHandler } from '../broker/index.js';
import { CertfleetError, type ErrorCode } from '../errors.js';
import { rejectionOf, type Rejection } from '../provisioning/rejections.js';
import { RenewalRefusal, type Renewals } from './renewal.js';

type Log = (obj: Record<string, unknown>, msg: string) => void;

const STATUS: Partial<Record<ErrorCode, number>> = { 'bad-request': 400, forbidden: 403, 'not-found': 404, 'invalid-state': 409 };

/** A renewal refusal names its reason as errorCode (SubjectMismatch, KeyReused…); anything else reads as fleet provisioning's rejections do. */
export function renewalRejection(err: unknown): Rejection {
  if (err instanceof RenewalRefusal) return { statusCode: STATUS[err.code] ?? 400, errorCode: err.reason, errorMessage: err.message };
  return rejectionOf(err);
}

function body(payload: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = payload.length === 0 ? undefined : JSON.parse(payload.toString('utf8'));
  } catch {
    throw new CertfleetError('bad-request', 'the request payload is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CertfleetError('bad-request', 'the request payload must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function renewalRequests(renewals: Renewals, log?: { readonly warn: Log; readonly error: Log }): RequestHandler {
  return {
    topics: [thingRequestFilter('certificate/renew'), thingRequestFilter('certificate/confirm')],
    async handle(req: DeviceRequest): Promise<DeviceAnswer> {
      const thing = thingOfTopic(req.topic)!;
      const certificateId = req.identity.certificateId;
      try {
        const b = body(req.payload);
        if (thingTopicSuffix(req.topic) === 'certificate/confirm') {
          return { outcome: 'accepted', body: await renewals.confirm(certificateId, thing, b.certificateId) };
        }
        const csr = b.certificateSigningRequest;
        if (typeof csr !== 'string' || csr.length > 16 * 1024) throw new CertfleetError('bad-request', 'certificateSigningRequest must be a PEM certificate request');
        return { outcome: 'accepted', body: await renewals.renew(certificateId, thing, csr) };
      } catch (err) {
        const rejection = renewalRejection(err);
        const fields = { certificateId, thing, topic: req.topic, statusCode: rejection.statusCode, errorCode: rejection.errorCode, detail: rejection.errorMessage };
        if (rejection.statusCode >= 500) log?.error({ ...fields, err: err instanceof Error ? err.message : String(err) }, 'renewal request failed');
        else log?.warn(fields, 'renewal request rejected');
        return { outcome: 'rejected', body: rejection };
      }
    },
  };
}
