/**
 * Policy evaluation, pure: may this device do this action on this resource?
 *
 * 1. Only statements listing the action count.
 * 2. Each resource has its variables filled from the context; a resource
 *    whose variables cannot all be filled safely matches nothing (resource.ts).
 * 3. connect: the resource is a client id, equal to the requested one. No
 *    character is special, `*` included; only variables are filled in.
 *    publish, receive: the topic must match the resource as a filter (§4.7).
 *    subscribe: the requested filter must be covered by an allowed filter
 *    (topics.ts levelsCovered) and must not overlap a denied one (levelsOverlap).
 * 4. Any matching deny wins over every allow; without a matching allow the
 *    answer is no (default deny).
 */
import { compiledStatementsOf, type CompiledStatement, type PolicyAction, type PolicyDocument } from './document.js';
import { fillClientId, fillTopicLevels, type PolicyContext, type ResourceTemplate } from './resource.js';
import { isValidTopicName, levelsAreValidFilter, levelsCovered, levelsMatch, levelsOverlap, splitLevels } from './topics.js';

export interface PolicyRequest {
  readonly action: PolicyAction;
  /** A client id (connect), a topic name (publish, receive) or a topic filter (subscribe). */
  readonly resource: string;
  readonly context: PolicyContext;
}

/** Which statement decided: indexes into the policies given and their statements. */
export interface StatementRef {
  readonly policyIndex: number;
  readonly statementIndex: number;
}

export interface PolicyDecision {
  readonly allowed: boolean;
  readonly reason: 'allowed' | 'explicit-deny' | 'no-allow';
  /** The deny that refused, or the first allow that granted; absent for 'no-allow'. */
  readonly statement?: StatementRef;
}

const NO_ALLOW: PolicyDecision = Object.freeze({ allowed: false, reason: 'no-allow' });

/**
 * Decides a request against every policy attached to the certificate. A
 * malformed request resource (a topic name with a wildcard, a filter with a
 * misplaced `#`, an empty topic) is never allowed. Throws 'bad-request' only
 * for a policy that parsePolicyDocument would refuse.
 */
export function evaluate(policies: readonly PolicyDocument[], request: PolicyRequest): PolicyDecision {
  const { action, resource, context } = request;
  let requested: readonly string[] = [];
  if (action !== 'connect') {
    // Split once; every topic resource is compared on levels.
    if (action === 'subscribe') {
      requested = splitLevels(resource);
      if (resource.length === 0 || resource.includes('\u0000') || !levelsAreValidFilter(requested)) return NO_ALLOW;
    } else {
      if (!isValidTopicName(resource)) return NO_ALLOW;
      requested = splitLevels(resource);
    }
  }

  let allow: StatementRef | undefined;
  for (let p = 0; p < policies.length; p++) {
    const statements = compiledStatementsOf(policies[p]!);
    for (let s = 0; s < statements.length; s++) {
      const statement = statements[s]!;
      if (!statement.actions.has(action)) continue;
      // Once something allows, only a deny can change the answer.
      if (statement.effect === 'allow' && allow !== undefined) continue;
      if (!statementMatches(statement, action, resource, requested, context)) continue;
      if (statement.effect === 'deny') return { allowed: false, reason: 'explicit-deny', statement: { policyIndex: p, statementIndex: s } };
      allow = { policyIndex: p, statementIndex: s };
    }
  }
  return allow === undefined ? NO_ALLOW : { allowed: true, reason: 'allowed', statement: allow };
}

function statementMatches(
  statement: CompiledStatement,
  action: PolicyAction,
  resource: string,
  requested: readonly string[],
  context: PolicyContext,
): boolean {
  for (const template of statement.resources) {
    if (resourceMatches(template, statement.effect === 'deny', action, resource, requested, context)) return true;
  }
  return false;
}

function resourceMatches(
  template: ResourceTemplate,
  deny: boolean,
  action: PolicyAction,
  resource: string,
  requested: readonly string[],
  context: PolicyContext,
): boolean {
  // A variable without a value (no thing, no such attribute, no CN) or with
  // an unsafe one leaves the resource matching nothing, in a deny statement
  // as in an allow one: a deny on `things/${thing.attr.site}/#` does not deny
  // a thing without a `site` attribute. This follows AWS IoT, whose policies
  // take IAM's variables: a variable that cannot be resolved makes the
  // statement not apply (IAM User Guide, "Policy variables with no value";
  // AWS IoT "Thing policy examples"). So write policies whose missing values
  // leave something unallowed, never something undenied.
  if (action === 'connect') {
    const clientId = fillClientId(template, context);
    return clientId !== undefined && clientId === resource;
  }
  const filter = fillTopicLevels(template, context);
  if (filter === undefined) return false;
  if (action !== 'subscribe') return levelsMatch(requested, filter);
  // A subscription is allowed only if everything it can receive is allowed,
  // and denied if anything it can receive is denied.
  return deny ? levelsOverlap(requested, filter) : levelsCovered(requested, filter);
}
