/**
 * @certfleet/agent: the device side of certfleet (DESIGN.md "Device agent").
 * A device key that never leaves, two certificate slots with crash-safe
 * promote, a trust store of several roots, a time floor for devices without
 * a clock, a renewal scheduler, and fleet provisioning by claim over MQTT.
 */
export { AgentError, type AgentErrorCode, type Rejection } from './errors.js';
export { DEFAULT_KEY_ALGORITHM, FileKeyStore, keyMatchesCertificate, type KeyStore } from './keystore.js';
export {
  CertificateSlots,
  SLOT_CRASH_STEPS,
  type Identity,
  type NextState,
  type RecoveryReport,
  type SlotMaterial,
  type SlotName,
} from './slots.js';
export { KEEP_ALL, TrustStore, type RemovalPolicy, type TrustBundleReceipt } from './trust-store.js';
export { BUILD_TIME_FLOOR, TimeFloor, type TimeBasis, type TimeFloorOptions, type ValidatedServerChain } from './clock.js';
export {
  backoffDelay,
  nextRenewalAt,
  RenewalLoop,
  renewalWindow,
  type BackoffOptions,
  type RenewalEvent,
  type RenewalLoopOptions,
  type RenewalOutcome,
  type RenewalThreshold,
  type RenewalTiming,
  type RenewReason,
  type Timer,
  type ValidityPeriod,
} from './renewal.js';
export { connectMqtt, type MqttConnectOptions } from './mqtt/connect.js';
export { mqttRequest } from './mqtt/request.js';
export { acceptedTopic, CREATE_FROM_CSR, provisionTopic, rejectedTopic, trustBundleTopic } from './mqtt/topics.js';
export { provisionByClaim, type ClaimRequest, type ClaimResult } from './provisioning/claim.js';
export { MemoryKeyStore } from './simulate/memory-key.js';
export { simulate, type Progress, type SimulateOptions, type SimulateSummary } from './simulate/simulate.js';
export { Pkcs11KeyStore, type Pkcs11KeyOptions } from './pkcs11/pkcs11-keystore.js';
export { EstClient, retryAfterMs, type EstAuth, type EstClientOptions } from './est/est-client.js';
export { estEnroll, estRenew, type EstFlowOptions } from './est/enrollment.js';
export {
  bootstrapIntoDeviceDir,
  bootstrapWithCsr,
  NetworkBootstrapClient,
  type GatewayBootstrapOptions,
  type NetworkBootstrapAnswer,
  type NetworkBootstrapRequest,
  type NetworkIdentity,
} from './gateway/network-bootstrap.js';
export { renewOverMqtt, type MqttRenewal, type MqttRenewed, type RenewalSlots } from './rotation/renew-mqtt.js';
export { applyTrustBundle, parseTrustBundle, type TrustBundle } from './rotation/trust-bundle.js';
export { certificateTopics, trustBundleAckTopic } from './mqtt/topics.js';
export { resumeNext, type PendingNext } from './rotation/resume-next.js';
export { isFallbackRefusal, renewExpired, RENEW_EXPIRED_PATH, type ExpiredRenewal } from './rotation/renew-expired.js';
export { DeviceAgent, type DeviceAgentOptions } from './run/agent.js';
export { readConfig, updateConfig, type AgentConfig, type ClaimConfig } from './run/config.js';
export { jsonLineLog, type StepLog } from './run/log.js';
export { parseDuration, parsePositiveDuration } from './duration.js';
