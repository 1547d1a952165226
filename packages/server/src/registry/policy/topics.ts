/**
 * MQTT topic names and topic filters, pure (MQTT 3.1.1 §4.7; MQTT 5.0 §4.7
 * says the same). A topic is compared level by level after one split on '/'
 * [MQTT-4.7.1-1], so each string function below has a `levels…` variant over
 * already-split levels: the policy evaluator splits a request once and keeps
 * its policies pre-split. The `levels…` variants trust their input to be
 * valid; the string functions check it and answer false when it is not.
 *
 * Level-0 `$` rule [MQTT-4.7.2-1]: a filter starting with `#` or `+` never
 * matches a topic whose first character is `$` ($SYS/…, $certfleet/…).
 */

/** Splits a topic name or filter into levels: `a//b/` → ['a', '', 'b', '']. Empty levels are levels (§4.7.1.1). */
export function splitLevels(s: string): string[] {
  return s.split('/');
}

const NOT_IN_TOPIC_NAME = /[+#\u0000]/;

/**
 * A topic name: at least one character [MQTT-4.7.3-1], no NUL [MQTT-4.7.3-2],
 * and no wildcard characters, which are for filters only [MQTT-3.3.2-2].
 */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !NOT_IN_TOPIC_NAME.test(topic);
}

/**
 * A topic filter: at least one character [MQTT-4.7.3-1], no NUL
 * [MQTT-4.7.3-2]; `#` only as a whole level and only the last one
 * [MQTT-4.7.1-2]; `+` only as a whole level [MQTT-4.7.1-3].
 */
export function isValidTopicFilter(filter: string): boolean {
  return filter.length > 0 && !filter.includes('\u0000') && levelsAreValidFilter(splitLevels(filter));
}

/** The wildcard rules of isValidTopicFilter on split levels. */
export function levelsAreValidFilter(levels: readonly string[]): boolean {
  const last = levels.length - 1;
  for (let i = 0; i <= last; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== last)) return false;
    if (level.includes('+') && level !== '+') return false;
  }
  return true;
}

/** Whether a topic name matches a filter (§4.7.1, [MQTT-4.7.2-1]); false if either is malformed. */
export function topicMatchesFilter(topic: string, filter: string): boolean {
  if (!isValidTopicName(topic) || !isValidTopicFilter(filter)) return false;
  return levelsMatch(splitLevels(topic), splitLevels(filter));
}

/** topicMatchesFilter on split, valid levels. */
export function levelsMatch(topic: readonly string[], filter: readonly string[]): boolean {
  // [MQTT-4.7.2-1]: `#` and `+` at level 0 do not reach `$` topics.
  if (isWildcard(filter[0]) && topic[0]!.startsWith('$')) return false;
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i]!;
    // §4.7.1.2: `#` matches this level and every level below, and the parent
    // too: `sport/#` matches `sport`, so it is checked before running out of topic.
    if (f === '#') return true;
    if (i >= topic.length) return false;
    // §4.7.1.3: `+` matches exactly one level, the empty one included (`a/+` matches `a/`).
    if (f !== '+' && f !== topic[i]) return false;
  }
  return topic.length === filter.length;
}

/**
 * Whether every topic `requested` matches is also matched by `allowed`, so a
 * subscription to `requested` can never deliver a message that `allowed`
 * would not. `things/t1/#` covers `things/t1/a/+` but not `#` nor
 * `things/+/x`. Under [MQTT-4.7.2-1] `#` does not cover `$SYS/x`, but it
 * covers `#`, since a `#` subscription never receives `$` topics either.
 * False if either filter is malformed.
 */
export function filterCoveredBy(requested: string, allowed: string): boolean {
  if (!isValidTopicFilter(requested) || !isValidTopicFilter(allowed)) return false;
  return levelsCovered(splitLevels(requested), splitLevels(allowed));
}

/** filterCoveredBy on split, valid levels. */
export function levelsCovered(requested: readonly string[], allowed: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const a = allowed[i];
    const r = requested[i];
    if (a === '#') {
      // `#` takes this level, all below and the parent (§4.7.1.2). Only a `$`
      // literal at level 0 escapes it [MQTT-4.7.2-1]; `r` is always defined at 0.
      return !(i === 0 && r!.startsWith('$'));
    }
    // Requested ended: covered only if allowed ended too (its `#` was handled above).
    if (r === undefined) return a === undefined;
    if (a === undefined) return false;
    if (r === '#') {
      // Requested `#` takes the parent and every deeper level. Only `#` covers
      // that, unless there is no parent: at level 0, or under a first level
      // that is empty, since the parent would be the empty topic, which does
      // not exist [MQTT-4.7.3-1]. Then `#` is "one level or more", as `+/#`.
      const noParent = i === 0 || (i === 1 && requested[0] === '');
      return noParent && a === '+' && allowed.length === i + 2 && allowed[i + 1] === '#';
    }
    if (a === '+') {
      // `+` covers any one level, but at level 0 not a `$` literal [MQTT-4.7.2-1].
      if (i === 0 && r.startsWith('$')) return false;
      continue;
    }
    // A literal allowed level covers only the same literal; `+` requested spans every value.
    if (r !== a) return false;
  }
}

/**
 * Whether some topic is matched by both filters. A deny statement refuses a
 * subscription whose filter overlaps a denied filter: `things/#` overlaps
 * a denied `things/t2/secret`, so it is refused although it is not covered by
 * it. False if either filter is malformed.
 */
export function filtersOverlap(a: string, b: string): boolean {
  if (!isValidTopicFilter(a) || !isValidTopicFilter(b)) return false;
  return levelsOverlap(splitLevels(a), splitLevels(b));
}

/** filtersOverlap on split, valid levels. */
export function levelsOverlap(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x === '#' || y === '#') {
      // One side takes everything from here (and the parent, §4.7.1.2); the
      // other can be completed to a topic, but a `$` literal at level 0 is
      // reached by no level-0 wildcard [MQTT-4.7.2-1].
      const other = x === '#' ? y : x;
      if (i === 0) return !other!.startsWith('$');
      // The other ended here, so only the parent of `#` can be common; under
      // an empty first level that parent is the empty topic [MQTT-4.7.3-1].
      return !(other === undefined && i === 1 && (a[0] === '' || b[0] === ''));
    }
    if (x === undefined || y === undefined) return x === y;
    if (x === '+' || y === '+') {
      if (i === 0 && (x === '+' ? y : x).startsWith('$')) return false;
      continue;
    }
    if (x !== y) return false;
  }
}

function isWildcard(level: string | undefined): boolean {
  return level === '#' || level === '+';
}
