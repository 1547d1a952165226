/**
 * Policy documents: what an operator may write, checked strictly once, when
 * the document enters the platform, so evaluation never meets a surprise.
 *
 *   { "version"?: "2026-01-01",
 *     "statements": [ { "effect": "allow" | "deny",
 *                       "actions": ["connect" | "publish" | "subscribe" | "receive", …],
 *                       "resources": ["things/${thing.name}/#", …] } ] }
 *
 * Every refusal is a CertfleetError with code 'bad-request' and a message that
 * starts with the path of the offending value (`statements[1].actions[0]: …`).
 */
import { CertfleetError } from '../../errors.js';
import { parseTemplate, type ResourceTemplate } from './resource.js';
import { levelsAreValidFilter } from './topics.js';

export const POLICY_ACTIONS = ['connect', 'publish', 'subscribe', 'receive'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];
export type PolicyEffect = 'allow' | 'deny';
/** The only document version so far; optional in documents. */
export const POLICY_VERSION = '2026-01-01';
/** Bytes of UTF-8 JSON: the text as submitted, or policyDocumentSize() of a decoded document. */
export const POLICY_DOCUMENT_MAX_BYTES = 20 * 1024;
export const MAX_STATEMENTS = 100;
export const MAX_RESOURCES = 100;
export const MAX_RESOURCE_LENGTH = 512;

export interface PolicyStatement {
  readonly effect: PolicyEffect;
  readonly actions: readonly PolicyAction[];
  readonly resources: readonly string[];
}

export interface PolicyDocument {
  readonly version?: typeof POLICY_VERSION;
  readonly statements: readonly PolicyStatement[];
}

/** A statement as the evaluator uses it: resources parsed into templates. Internal to policy/. */
export interface CompiledStatement {
  readonly effect: PolicyEffect;
  readonly actions: ReadonlySet<PolicyAction>;
  readonly resources: readonly ResourceTemplate[];
}

/** C0 controls, DEL, C1 controls (MQTT 3.1.1 §1.5.3: SHOULD NOT be in strings; NUL MUST NOT [MQTT-1.5.3-2]). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A lone UTF-16 surrogate cannot be encoded as UTF-8 [MQTT-1.5.3-1]. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const TOPIC_ACTIONS: ReadonlySet<PolicyAction> = new Set(['publish', 'subscribe', 'receive']);

const compiled = new WeakMap<PolicyDocument, readonly CompiledStatement[]>();

/**
 * Checks a policy document and returns a frozen copy. `input` is the decoded
 * JSON value, or the JSON text itself.
 */
export function parsePolicyDocument(input: unknown): PolicyDocument {
  let value = input;
  if (typeof input === 'string') {
    // Measured before parsing, so an oversized text costs no parse.
    if (Buffer.byteLength(input) > POLICY_DOCUMENT_MAX_BYTES) throw tooLarge();
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new CertfleetError('bad-request', `policy document is not JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const obj = plainObject(value, 'policy document');
  onlyKeys(obj, ['version', 'statements'], 'policy document', ['statements']);
  if (obj.version !== undefined && obj.version !== POLICY_VERSION) {
    throw new CertfleetError('bad-request', `version: must be "${POLICY_VERSION}" (or left out)`);
  }
  const statements = boundedArray(obj.statements, 'statements', 'statement', MAX_STATEMENTS);
  const parsed: PolicyStatement[] = [];
  const compiledStatements: CompiledStatement[] = [];
  for (let i = 0; i < statements.length; i++) {
    const { statement, compiledStatement } = parseStatement(statements[i], `statements[${i}]`);
    parsed.push(statement);
    compiledStatements.push(compiledStatement);
  }
  const doc: PolicyDocument = Object.freeze({
    ...(obj.version === undefined ? {} : { version: POLICY_VERSION }),
    statements: Object.freeze(parsed),
  });
  if (policyDocumentSize(doc) > POLICY_DOCUMENT_MAX_BYTES) throw tooLarge();
  compiled.set(doc, Object.freeze(compiledStatements));
  return doc;
}

/** UTF-8 bytes of the document's compact JSON, the form it is stored in (as AWS IoT, whitespace does not count). */
export function policyDocumentSize(doc: PolicyDocument): number {
  return Buffer.byteLength(JSON.stringify(doc));
}

/**
 * The evaluator's view of a document. A document from parsePolicyDocument is
 * compiled already; any other object is checked and compiled on first use
 * (and refused like a submitted one if it is not valid). Documents are taken
 * as immutable: parsePolicyDocument's are frozen.
 */
export function compiledStatementsOf(doc: PolicyDocument): readonly CompiledStatement[] {
  let statements = compiled.get(doc);
  if (statements === undefined) {
    statements = compiled.get(parsePolicyDocument(doc))!;
    compiled.set(doc, statements);
  }
  return statements;
}

function parseStatement(value: unknown, path: string): { statement: PolicyStatement; compiledStatement: CompiledStatement } {
  const obj = plainObject(value, path);
  onlyKeys(obj, ['effect', 'actions', 'resources'], path, ['effect', 'actions', 'resources']);
  const effect = obj.effect;
  if (effect !== 'allow' && effect !== 'deny') throw new CertfleetError('bad-request', `${path}.effect: must be "allow" or "deny"`);

  // At most one of each action; no bound is needed beyond that.
  const actions = boundedArray(obj.actions, `${path}.actions`, 'action', Infinity);
  const actionSet = new Set<PolicyAction>();
  for (let i = 0; i < actions.length; i++) {
    const action: unknown = actions[i];
    if (typeof action !== 'string') throw new CertfleetError('bad-request', `${path}.actions[${i}]: must be a string, not ${typeName(action)}`);
    if (!POLICY_ACTIONS.includes(action as PolicyAction)) {
      // No wildcard action: a policy names what it grants.
      throw new CertfleetError('bad-request', `${path}.actions[${i}]: unknown action ${quote(action)} (known: ${POLICY_ACTIONS.join(', ')})`);
    }
    if (actionSet.has(action as PolicyAction)) throw new CertfleetError('bad-request', `${path}.actions[${i}]: "${action}" is listed twice`);
    actionSet.add(action as PolicyAction);
  }
  const isTopic = [...actionSet].some((a) => TOPIC_ACTIONS.has(a));

  const resources = boundedArray(obj.resources, `${path}.resources`, 'resource', MAX_RESOURCES);
  const templates: ResourceTemplate[] = [];
  for (let i = 0; i < resources.length; i++) templates.push(parseResource(resources[i], `${path}.resources[${i}]`, isTopic));

  return {
    statement: Object.freeze({ effect, actions: Object.freeze([...(actions as PolicyAction[])]), resources: Object.freeze(templates.map((t) => t.raw)) }),
    compiledStatement: Object.freeze({ effect, actions: actionSet, resources: Object.freeze(templates) }),
  };
}

function parseResource(value: unknown, path: string, isTopic: boolean): ResourceTemplate {
  if (typeof value !== 'string') throw new CertfleetError('bad-request', `${path}: must be a string, not ${typeName(value)}`);
  if (value.length === 0) throw new CertfleetError('bad-request', `${path}: must not be empty [MQTT-4.7.3-1]`);
  if (value.length > MAX_RESOURCE_LENGTH) throw new CertfleetError('bad-request', `${path}: ${value.length} characters, at most ${MAX_RESOURCE_LENGTH}`);
  const control = CONTROL.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new CertfleetError('bad-request', `${path}: control character U+${code} at index ${control.index} is not allowed`);
  }
  if (LONE_SURROGATE.test(value)) throw new CertfleetError('bad-request', `${path}: not well-formed Unicode (lone surrogate)`);
  const template = parseTemplate(value, path);
  // Topic filter syntax (MQTT 3.1.1 §4.7.1), checked on the raw text: a
  // variable is never a wildcard, and fills a level only with '/'-free text.
  if (isTopic && !levelsAreValidFilter(value.split('/'))) {
    throw new CertfleetError(
      'bad-request',
      `${path}: ${JSON.stringify(value)} is not an MQTT topic filter: '#' must be a whole level and the last one [MQTT-4.7.1-2], '+' a whole level [MQTT-4.7.1-3]`,
    );
  }
  return template;
}

function plainObject(value: unknown, path: string): Record<string, unknown> {
  const proto: unknown = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (Array.isArray(value) || (proto !== Object.prototype && proto !== null)) {
    throw new CertfleetError('bad-request', `${path}: must be a JSON object, not ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

function boundedArray(value: unknown, path: string, item: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw new CertfleetError('bad-request', `${path}: must be an array, not ${typeName(value)}`);
  if (value.length === 0) throw new CertfleetError('bad-request', `${path}: must hold at least one ${item}`);
  if (value.length > max) throw new CertfleetError('bad-request', `${path}: ${value.length} ${item}s, at most ${max}`);
  return value;
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string, required: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new CertfleetError('bad-request', `${path}: unknown field ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
  }
  for (const key of required) {
    if (!Object.hasOwn(obj, key)) throw new CertfleetError('bad-request', `${path}: missing field "${key}"`);
  }
}

function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    return proto === Object.prototype || proto === null ? 'an object' : `a ${proto.constructor?.name ?? 'class instance'}`;
  }
  return `a ${typeof value}`;
}

function tooLarge(): CertfleetError {
  return new CertfleetError('bad-request', `policy document is larger than ${POLICY_DOCUMENT_MAX_BYTES} bytes of JSON`);
}
