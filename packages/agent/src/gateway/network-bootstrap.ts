/**
 * The gateway's half of bootstrap by network identity (docs/est.md): a
 * gateway vouches for a device behind it by the IMSI or IMEI the network
 * gives it, and asks the platform for that device's certificate with
 * `POST /api/v1/network-bootstrap`, authenticated by its own certificate as
 * the TLS client certificate.
 *
 * Two ways to use it:
 *  - the device made its own key and CSR (its key never leaves it): the
 *    gateway relays the CSR and hands back certificate and chain;
 *  - the device is a module that cannot make keys: the gateway makes the
 *    key in the next slot of a device directory, and the answer is written
 *    and promoted there with the agent's slot writer, so the directory is an
 *    ordinary agent data dir (current/key.pem 0600, cert.pem, chain.pem, the
 *    gateway's trusted roots, agent.json naming the thing and the api).
 *
 * The server is recognised, as in every agent flow, by the gateway's trust
 * store checked at its time floor before the CSR is sent (verified-request.ts).
 */
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { Certificate, decodePem, parseCsr } from '@certfleet/pki';
import { TimeFloor } from '../clock.js';
import { writeFileDurable } from '../durable-fs.js';
import { AgentError } from '../errors.js';
import { rejectionOf, verifiedRequest, type ClientCredential, type VerifiedResponse } from '../http/verified-request.js';
import { updateConfig } from '../run/config.js';
import { CertificateSlots, type Identity } from '../slots.js';
import { TrustStore } from '../trust-store.js';

export type NetworkIdentityType = 'imsi' | 'imei';

export interface NetworkIdentity {
  readonly type: NetworkIdentityType;
  /** Digits as the network reports them; the server checks them (3GPP TS 23.003 §2.2, §6.2). */
  readonly value: string;
}

export interface NetworkBootstrapRequest {
  readonly networkIdentity: NetworkIdentity;
  /** The provisioning template that names and shapes the device's thing. */
  readonly template: string;
  readonly parameters?: Readonly<Record<string, string>>;
  /** The device's PKCS#10 request, PEM. */
  readonly csrPem: string;
}

/** The server's 201 answer. */
export interface NetworkBootstrapAnswer {
  readonly thingName: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly deviceConfiguration: Record<string, unknown>;
}

export interface NetworkBootstrapClientOptions {
  /** https://host:port of the api port. */
  readonly url: string;
  /** The gateway's certificate (with its chain) and key. */
  readonly credential: ClientCredential;
  /** Checks the server's chain (leaf first, PEM): e.g. TimeFloor.validateServerChain over the trust store. */
  readonly verifyServer?: (chainPems: string[]) => void;
  readonly ca?: string;
  readonly timeoutMs?: number;
  /** Sees the server's Date header (a gateway without a clock raises its time floor from it). */
  readonly onServerDate?: (date: Date) => void;
}

/** What each refusal means for the one who runs the gateway, ahead of the server's own words. */
const MEANING: Record<number, string> = {
  400: 'the request was refused as malformed',
  401: "the gateway's certificate was not accepted as TLS client certificate",
  403: 'this certificate is not a gateway\'s (its thing needs the attribute certfleet.role=gateway)',
  404: 'not found',
  409: 'refused by the template\'s override rule or a conflict with an existing thing',
};

export class NetworkBootstrapClient {
  private readonly endpoint: string;

  constructor(private readonly opts: NetworkBootstrapClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new AgentError('bad-input', `${JSON.stringify(opts.url)} is not a URL`);
    }
    if (u.protocol !== 'https:') throw new AgentError('bad-input', `network bootstrap needs the https:// api URL, got ${opts.url}`);
    this.endpoint = `${u.origin}/api/v1/network-bootstrap`;
  }

  /** The certificate for the device of `req.networkIdentity`; a refusal is AgentError 'rejected' carrying the server's problem document. */
  async request(req: NetworkBootstrapRequest): Promise<NetworkBootstrapAnswer> {
    csrPublicKey(req.csrPem);
    const body = JSON.stringify({
      networkIdentity: { type: req.networkIdentity.type, value: req.networkIdentity.value },
      csr: req.csrPem,
      template: req.template,
      ...(req.parameters && Object.keys(req.parameters).length > 0 ? { parameters: req.parameters } : {}),
    });
    const res = await verifiedRequest({
      url: this.endpoint,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      ...this.opts.credential,
      ...(this.opts.verifyServer ? { verifyServer: this.opts.verifyServer } : {}),
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
    });
    const date = header(res, 'date');
    if (date && this.opts.onServerDate && Number.isFinite(Date.parse(date))) this.opts.onServerDate(new Date(date));
    const what = `network bootstrap of ${req.networkIdentity.type.toUpperCase()} ${req.networkIdentity.value}`;
    if (res.status !== 201) {
      const meaning = MEANING[res.status];
      throw rejectionOf(meaning ? `${what}: ${meaning}` : what, res);
    }
    const answer = parseAnswer(what, res.body);
    // The answer must certify the key the device asked for: anything else is useless to it.
    const leaf = Certificate.allFromPem(answer.certificatePem)[0];
    if (!leaf || !leaf.publicKey.equals(csrPublicKey(req.csrPem))) throw new AgentError('bad-response', `${what}: the certificate does not certify the CSR's key`);
    return answer;
  }
}

function csrPublicKey(csrPem: string) {
  try {
    const der = decodePem(csrPem, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST');
    return createPublicKey({ key: parseCsr(der).spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new AgentError('bad-input', `not a PEM certificate request: ${(err as Error).message}`, { cause: err });
  }
}

function parseAnswer(what: string, text: string): NetworkBootstrapAnswer {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new AgentError('bad-response', `${what}: the answer is not JSON`, { cause: err });
  }
  for (const k of ['thingName', 'certificateId', 'certificatePem', 'chainPem'] as const) {
    if (typeof v[k] !== 'string') throw new AgentError('bad-response', `${what}: the answer has no ${k}`);
  }
  const config = v.deviceConfiguration;
  return {
    thingName: v.thingName as string,
    certificateId: v.certificateId as string,
    certificatePem: v.certificatePem as string,
    chainPem: v.chainPem as string,
    deviceConfiguration: typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : {},
  };
}

const header = (res: VerifiedResponse, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export interface GatewayBootstrapOptions {
  /** The gateway's agent data dir: its current identity authenticates, its trust store recognises the server. */
  readonly gatewayDir: string;
  /** https://host:port of the api port. */
  readonly url: string;
  readonly networkIdentity: NetworkIdentity;
  readonly template: string;
  readonly parameters?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/** A client on the gateway's data dir: read only (the gateway's own agent may be running and owns its slots). */
export async function gatewayClient(opts: Pick<GatewayBootstrapOptions, 'gatewayDir' | 'url' | 'timeoutMs'>): Promise<{ client: NetworkBootstrapClient; trust: TrustStore }> {
  const [slots, trust, floor] = await Promise.all([CertificateSlots.open(opts.gatewayDir, { recover: false }), TrustStore.open(opts.gatewayDir), TimeFloor.open(opts.gatewayDir)]);
  const gateway = await slots.current();
  if (!gateway) throw new AgentError('slot-empty', `no gateway identity in ${opts.gatewayDir}/current: install the gateway's certificate first (certfleet-agent install)`);
  const roots = trust.list();
  if (roots.length === 0) throw new AgentError('trust-root-needed', `no trusted roots in ${opts.gatewayDir}/trust: add the server's root first (certfleet-agent trust add)`);
  const client = new NetworkBootstrapClient({
    url: opts.url,
    credential: { certificatePem: gateway.certificatePem + gateway.chainPem, keyPem: gateway.key.tlsKeyPem() },
    verifyServer: (pems) => void floor.validateServerChain(pems, roots),
    onServerDate: (d) => void floor.acceptServerTime(d).catch(() => {}),
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  return { client, trust };
}

/** Relays a device's own CSR: the device keeps its key, the gateway only carries the answer back. */
export async function bootstrapWithCsr(opts: GatewayBootstrapOptions & { csrPem: string }): Promise<NetworkBootstrapAnswer> {
  const { client } = await gatewayClient(opts);
  return client.request({ networkIdentity: opts.networkIdentity, template: opts.template, csrPem: opts.csrPem, ...(opts.parameters ? { parameters: opts.parameters } : {}) });
}

/**
 * For a device that cannot make keys: the key is made in `deviceDir`'s next
 * slot (reused if an earlier attempt was cut off, so a late answer still
 * fits), the certificate written there and promoted. The device dir also
 * gets the gateway's roots, agent.json (thing, api) and the template's
 * device configuration, so `certfleet-agent run --data deviceDir` can take over.
 */
export async function bootstrapIntoDeviceDir(opts: GatewayBootstrapOptions & { deviceDir: string }): Promise<{ answer: NetworkBootstrapAnswer; identity: Identity }> {
  const { client, trust } = await gatewayClient(opts);
  const slots = await CertificateSlots.open(opts.deviceDir);
  const key = await slots.nextKey();
  // The template names the thing; the CN only has to say whose key this is.
  const csrPem = key.createCsr(`CN=${opts.networkIdentity.type}-${opts.networkIdentity.value}`);
  const answer = await client.request({ networkIdentity: opts.networkIdentity, template: opts.template, csrPem, ...(opts.parameters ? { parameters: opts.parameters } : {}) });
  await slots.writeNext({ certificatePem: answer.certificatePem, chainPem: answer.chainPem });
  const identity = await slots.promote();
  await (await TrustStore.open(opts.deviceDir)).add(trust.bundle());
  await updateConfig(opts.deviceDir, { thing: answer.thingName, api: new URL(opts.url).origin });
  await writeFileDurable(join(opts.deviceDir, 'device-configuration.json'), `${JSON.stringify(answer.deviceConfiguration, null, 2)}\n`, { mode: 0o644, overwrite: true });
  return { answer, identity };
}
