/**
 * The MQTT 5 reason codes certfleet sends on its own initiative (MQTT 5
 * §2.4, table 2-6), chosen here, at the edge, from certfleet's reasons for
 * ending a connection. MQTT 3.1.1 has no server DISCONNECT: a 3.1.1 client
 * only sees its connection close.
 */
import type { DisconnectReason, RefusalReason } from './live-connections.js';

export const ReasonCode = {
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  NOT_AUTHORIZED: 0x87,
  SERVER_SHUTTING_DOWN: 0x8b,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  PACKET_TOO_LARGE: 0x95,
  ADMINISTRATIVE_ACTION: 0x98,
} as const;

const BY_REASON: Readonly<Record<string, number>> = {
  'server-shutdown': ReasonCode.SERVER_SHUTTING_DOWN,
  'client-id-takeover': ReasonCode.SESSION_TAKEN_OVER,
  'packet-too-large': ReasonCode.PACKET_TOO_LARGE,
  'malformed-packet': ReasonCode.MALFORMED_PACKET,
  'protocol-error': ReasonCode.PROTOCOL_ERROR,
  'keepalive-timeout': ReasonCode.KEEP_ALIVE_TIMEOUT,
  'publish-denied': ReasonCode.NOT_AUTHORIZED,
};

/**
 * The DISCONNECT reason code (MQTT 5 §3.14.2.1) for why certfleet ends a
 * session. A certificate or CA that stopped being active means the device is
 * no longer authorised (0x87), which tells its firmware that reconnecting
 * with the same credential is pointless; any other server-side reason given
 * to RunningBroker.disconnectCertificate() is an administrative action (0x98).
 */
export function disconnectReasonCode(reason: DisconnectReason | RefusalReason | undefined): number {
  if (reason === undefined) return ReasonCode.ADMINISTRATIVE_ACTION;
  if (reason.startsWith('certificate-') || reason.startsWith('ca-')) return ReasonCode.NOT_AUTHORIZED;
  return BY_REASON[reason] ?? ReasonCode.ADMINISTRATIVE_ACTION;
}
