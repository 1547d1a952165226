/**
 * Device policies: which client ids a certificate may connect as and which
 * topics it may publish, subscribe to and receive. Pure: the store keeps the
 * documents, the broker asks evaluate().
 */
export {
  parsePolicyDocument,
  policyDocumentSize,
  POLICY_ACTIONS,
  POLICY_VERSION,
  POLICY_DOCUMENT_MAX_BYTES,
  MAX_STATEMENTS,
  MAX_RESOURCES,
  MAX_RESOURCE_LENGTH,
  type PolicyAction,
  type PolicyEffect,
  type PolicyStatement,
  type PolicyDocument,
} from './document.js';
export type { PolicyContext } from './resource.js';
export { evaluate, type PolicyRequest, type PolicyDecision, type StatementRef } from './evaluate.js';
export { topicMatchesFilter, filterCoveredBy, filtersOverlap, isValidTopicName, isValidTopicFilter } from './topics.js';
