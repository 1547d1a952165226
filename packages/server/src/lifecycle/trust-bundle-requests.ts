/**
 * The device side of trust-anchor rollover on MQTT (docs/device-protocol.md):
 * `$certfleet/things/{thing}/trust-bundle/ack` `{ "version" }`, answered on
 * `…/ack/accepted` `{ "version" }` or `…/ack/rejected`. A device
 * acknowledges only for the thing its certificate is attached to.
 */
import type { DeviceAnswer, DeviceRequest, RequestHandler } from '../broker/index.js';
import { CertfleetError } from '../errors.js';
import { rejectionOf } from '../provisioning/rejections.js';
import { TRUST_BUNDLE_ACK_FILTER, type TrustBundles } from './trust-bundle.js';

const ACK = /^\$certfleet\/things\/([^/]+)\/trust-bundle\/ack$/;

export function trustBundleRequests(bundles: Pick<TrustBundles, 'acknowledge'>): RequestHandler {
  return {
    topics: [TRUST_BUNDLE_ACK_FILTER],
    async handle(req: DeviceRequest): Promise<DeviceAnswer> {
      try {
        const thing = ACK.exec(req.topic)?.[1];
        if (thing === undefined) throw new CertfleetError('not-found', `nothing answers ${req.topic}`);
        if (req.identity.thingName !== thing) throw new CertfleetError('forbidden', `this certificate is not attached to ${thing}`);
        let body: unknown;
        try {
          body = JSON.parse(req.payload.toString('utf8'));
        } catch {
          throw new CertfleetError('bad-request', 'the request payload is not JSON');
        }
        const version = (body as { version?: unknown } | null)?.version;
        if (typeof version !== 'number' || !Number.isInteger(version)) throw new CertfleetError('bad-request', '"version" must be an integer');
        await bundles.acknowledge(thing, version);
        return { outcome: 'accepted', body: { version } };
      } catch (err) {
        return { outcome: 'rejected', body: rejectionOf(err) };
      }
    },
  };
}
