/**
 * Fleet provisioning's MQTT edge: the broker hands over a request published
 * on one of the contract's topics, this parses it, calls FleetProvisioning,
 * and turns the outcome into the `…/accepted` body or the `…/rejected`
 * `{ statusCode, errorCode, errorMessage }` (rejections.ts).
 */
import { CREATE_FROM_CSR_TOPIC, CREATE_KEYS_TOPIC, PROVISION_TOPIC_FILTER, type DeviceAnswer, type DeviceRequest, type RequestHandler } from '../broker/index.js';
import { CertfleetError } from '../errors.js';
import type { FleetProvisioning } from './fleet-provisioning.js';
import { rejectionOf } from './rejections.js';

const PROVISION = /^\$certfleet\/provisioning-templates\/([^/]+)\/provision\/json$/;

type Log = (obj: Record<string, unknown>, msg: string) => void;

function parse(payload: Buffer): unknown {
  if (payload.length === 0) return undefined;
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw new CertfleetError('bad-request', 'the request payload is not JSON');
  }
}

export function fleetProvisioningRequests(fp: FleetProvisioning, log?: { readonly warn: Log; readonly error: Log }): RequestHandler {
  return {
    topics: [CREATE_FROM_CSR_TOPIC, CREATE_KEYS_TOPIC, PROVISION_TOPIC_FILTER],
    async handle(req: DeviceRequest): Promise<DeviceAnswer> {
      const caller = { certificateId: req.identity.certificateId, clientId: req.clientId };
      try {
        const body = parse(req.payload);
        if (req.topic === CREATE_FROM_CSR_TOPIC) return { outcome: 'accepted', body: await fp.createFromCsr(caller, body) };
        if (req.topic === CREATE_KEYS_TOPIC) return { outcome: 'accepted', body: await fp.createKeysAndCertificate(caller, body) };
        const m = PROVISION.exec(req.topic);
        if (!m) throw new CertfleetError('not-found', `nothing answers ${req.topic}`);
        return { outcome: 'accepted', body: await fp.provision(caller, m[1]!, body) };
      } catch (err) {
        const rejection = rejectionOf(err);
        const fields = { ...caller, topic: req.topic, statusCode: rejection.statusCode, errorCode: rejection.errorCode, detail: rejection.errorMessage };
        if (rejection.statusCode >= 500) log?.error({ ...fields, err: err instanceof Error ? err.message : String(err) }, 'fleet provisioning request failed');
        else log?.warn(fields, 'fleet provisioning request rejected');
        return { outcome: 'rejected', body: rejection };
      }
    },
  };
}
