/**
 * Connecting to the platform's MQTT endpoint with a device credential.
 *
 * Node verifies a TLS server against the system clock, which on a device
 * without an RTC reads 1970 and rejects every certificate as not yet valid.
 * With `verifyServer` the agent checks the server itself instead (typically
 * TimeFloor.validateServerChain over the trust store's roots, plus the host
 * name), on 'secureConnect', before the MQTT session is up: the only bytes
 * that may have left by then are the CONNECT packet (client id, no secret;
 * the device authenticates by its certificate).
 */
import { checkServerIdentity, type SecureContext, type TLSSocket } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { AgentError } from '../errors.js';
import { peerChain } from '../peer-chain.js';

export interface MqttConnectOptions {
  /** mqtts://host:port; mqtt:// only on a trusted network (a TLS-offload gateway, tests). */
  readonly url: string;
  readonly clientId: string;
  /** The device's (or the claim) certificate, with its chain after it if the server needs it. */
  readonly certificatePem?: string;
  /** Its key (KeyStore.tlsKeyPem()). */
  readonly keyPem?: string;
  /** In place of certificatePem/keyPem/ca: a context holding a key that is not a PEM (a PKCS#11 token through an engine). */
  readonly secureContext?: SecureContext;
  /** Roots for Node's own verification (TrustStore.bundle()); unused when verifyServer is given. */
  readonly ca?: string;
  /** Checks the server's chain (PEM, leaf first) in place of Node's system-clock check; throws to refuse. */
  readonly verifyServer?: (chainPems: string[]) => void;
  /** Name the server certificate must carry (default: the URL's host). */
  readonly servername?: string;
  readonly timeoutMs?: number;
  readonly protocolVersion?: 4 | 5;
}

export async function connectMqtt(opts: MqttConnectOptions): Promise<MqttClient> {
  const url = new URL(opts.url);
  if (url.protocol !== 'mqtts:' && url.protocol !== 'mqtt:') throw new AgentError('bad-input', `unsupported MQTT URL ${opts.url} (mqtts:// or mqtt://)`);
  const tls = url.protocol === 'mqtts:';
  const servername = opts.servername ?? url.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const options: IClientOptions = {
    clientId: opts.clientId,
    protocolVersion: opts.protocolVersion ?? 4,
    // The agent decides when to reconnect (renewal, a new identity), not the library.
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    ...(tls
      ? {
          ...(opts.certificatePem ? { cert: opts.certificatePem } : {}),
          ...(opts.keyPem ? { key: opts.keyPem } : {}),
          ...(opts.ca ? { ca: opts.ca } : {}),
          ...(opts.secureContext ? { secureContext: opts.secureContext } : {}),
          servername,
          rejectUnauthorized: opts.verifyServer === undefined,
        }
      : {}),
  };
  const client = mqtt.connect(opts.url, options);
  return new Promise<MqttClient>((resolve, reject) => {
    let refusal: unknown;
    const fail = (err: unknown) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', fail);
      client.removeListener('close', onClose);
      client.end(true);
      reject(refusal ?? (err instanceof AgentError ? err : new AgentError('unreachable', `cannot connect to ${opts.url}: ${(err as Error).message}`, { cause: err })));
    };
    const onConnect = () => {
      client.removeListener('error', fail);
      client.removeListener('close', onClose);
      // From here a lost connection shows as 'close'/'offline'; an 'error' without a listener would throw.
      client.on('error', () => {});
      resolve(client);
    };
    const onClose = () => fail(new Error('connection closed before CONNACK'));
    client.once('connect', onConnect);
    client.once('error', fail);
    client.once('close', onClose);
    if (tls && opts.verifyServer) {
      const socket = client.stream as TLSSocket;
      socket.once('secureConnect', () => {
        try {
          const { pems, leaf } = peerChain(socket);
          opts.verifyServer!(pems);
          const nameError = checkServerIdentity(servername, leaf);
          if (nameError) throw new AgentError('chain-invalid', `server certificate is not for ${servername}: ${nameError.message}`);
        } catch (err) {
          refusal = err instanceof AgentError ? err : new AgentError('chain-invalid', (err as Error).message, { cause: err });
          socket.destroy();
        }
      });
    }
  });
}
