/*
 * The device endpoint: MQTT over mutual TLS, admission of device
 * certificates, and the authorisation hooks. The broker reads the store; it
 * never writes certificates and never imports the signer (DESIGN.md).
 */
export { Admission, type AdmissionDeps, type AdmissionRefusal, type AdmissionResult, type DeviceIdentity } from './admission.js';
export { baselineAuthorization, RESERVED_PREFIXES } from './authorization.js';
export { startBroker, type BrokerOptions, type RunningBroker } from './broker.js';
export type { BrokerLogger, EngineHooks, Peer } from './engine.js';
