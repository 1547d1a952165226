/*
 * The device endpoint: MQTT over mutual TLS, admission of device
 * certificates, policy authorisation, connection records and metrics. The
 * broker reads the store (and writes only its connection records); it never
 * writes certificates and never imports the signer (DESIGN.md).
 */
export {
  Admission,
  type AdmissionDeps,
  type AdmissionRefusal,
  type AdmissionResult,
  type AutoRegister,
  type AutoRegistrationOutcome,
  type DeviceIdentity,
  type UnregisteredCertificate,
} from './admission.js';
export { Authorizer, DEVICE_REQUEST_TOPICS, RESERVED_PREFIXES, reservedTopicRefusal, type DenialReason, type Verdict } from './authorization.js';
export { DEFAULT_LIMITS, resolveLimits, startBroker, type BrokerLimits, type BrokerOptions, type RunningBroker } from './broker.js';
export { startDeviceEndpoint, type DeviceEndpoint, type DeviceEndpointOptions } from './endpoint.js';
export { startDeviceListener, type DeviceListener, type DeviceListenerOptions } from './listener.js';
export {
  claimRequestTopics,
  combineRequestHandlers,
  thingOfTopic,
  thingRequestFilter,
  thingTopic,
  thingTopicSuffix,
  THING_REQUEST_SUFFIXES,
  CREATE_FROM_CSR_TOPIC,
  CREATE_KEYS_TOPIC,
  PROVISION_TOPIC_FILTER,
  type DeviceAnswer,
  type DeviceRequest,
  type RequestHandler,
} from './requests.js';
export type { ConnectionRecordStore } from './connection-log.js';
export type { BrokerLogger } from './engine.js';
export type { DisconnectReason, RefusalReason } from './live-connections.js';
export { brokerMetrics, brokerMetricsRegistry } from './metrics.js';
export { peerChain } from './peer-chain.js';
export type { PolicySources } from './policy-session.js';
