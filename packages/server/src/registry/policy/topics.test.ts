import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterCoveredBy, filtersOverlap, isValidTopicFilter, isValidTopicName, levelsCovered, levelsMatch, levelsOverlap, splitLevels, topicMatchesFilter } from './topics.js';

describe('topic names and filters', () => {
  const rows: [string, boolean, boolean, string][] = [
    // text, valid name, valid filter, why
    ['a/b', true, true, 'plain'],
    ['a//b/', true, true, 'empty levels are levels'],
    ['/', true, true, 'two empty levels'],
    ['', false, false, 'at least one character [MQTT-4.7.3-1]'],
    ['a\u0000b', false, false, 'no NUL [MQTT-4.7.3-2]'],
    ['#', false, true, '# alone'],
    ['a/#', false, true, '# as the last level'],
    ['a/#/b', false, false, '# only last [MQTT-4.7.1-2]'],
    ['a#', false, false, '# alone in its level'],
    ['+', false, true, '+ alone'],
    ['+/a/+', false, true, '+ in several levels'],
    ['a+/b', false, false, '+ alone in its level [MQTT-4.7.1-3]'],
    ['$SYS/x', true, true, '$ is an ordinary character'],
  ];
  for (const [text, name, filter, why] of rows) {
    it(`${JSON.stringify(text)}: ${why}`, () => {
      assert.equal(isValidTopicName(text), name, 'name');
      assert.equal(isValidTopicFilter(text), filter, 'filter');
    });
  }
});

describe('topicMatchesFilter (MQTT 3.1.1 §4.7)', () => {
  const rows: [string, string, boolean, string][] = [
    ['a/b', 'a/b', true, 'exact'],
    ['a/b', 'a/c', false, 'different level'],
    ['a/b', 'A/b', false, 'case sensitive (§4.7.3)'],
    ['a/b', 'a', false, 'filter shorter'],
    ['a', 'a/b', false, 'filter longer'],
    ['a/b', 'a/+', true, '+ one level'],
    ['a/b/c', 'a/+', false, '+ exactly one level'],
    ['a', 'a/+', false, '+ needs a level'],
    ['a/', 'a/+', true, '+ matches an empty level'],
    ['a/b/c', 'a/+/c', true, '+ in the middle'],
    ['a/b/c', '+/+/+', true, 'all +'],
    ['a/b', '+/+/+', false, 'all + too many'],
    ['a', '#', true, '# everything'],
    ['a/b/c', '#', true, '# every depth'],
    ['a', 'a/#', true, '# includes the parent (§4.7.1.2)'],
    ['a/b/c', 'a/#', true, '# below'],
    ['b', 'a/#', false, '# not a sibling'],
    ['a/b', 'a/+/#', true, '+ then # parent'],
    ['a', 'a/+/#', false, '+ still needs its level'],
    ['a//b', 'a//b', true, 'empty level literal'],
    ['a//b', 'a/+/b', true, '+ over an empty level'],
    ['a//b', 'a/b', false, 'empty level is not skipped'],
    ['a/b/', 'a/b', false, 'trailing / is one more level'],
    ['a/b/', 'a/b/+', true, 'trailing empty level under +'],
    ['a/b/', 'a/b/#', true, 'trailing empty level under #'],
    ['/a', '+/a', true, 'leading / is an empty first level'],
    ['/a', '#', true, 'leading / under #'],
    ['/a', 'a', false, 'leading / matters'],
    ['$SYS/x', '#', false, '# does not reach $ topics [MQTT-4.7.2-1]'],
    ['$SYS/x', '+/x', false, '+ at level 0 does not reach $ topics [MQTT-4.7.2-1]'],
    ['$SYS/x', '$SYS/#', true, '$ spelled out'],
    ['$SYS/x', '$SYS/+', true, '$ spelled out, then +'],
    ['a/$x', 'a/+', true, '$ rule is level 0 only'],
    ['a/$x', 'a/#', true, '$ rule is level 0 only, #'],
    ['a/+', 'a/+', false, 'a topic name holds no wildcard'],
    ['', '#', false, 'empty topic'],
    ['a/b', 'a/#/b', false, 'malformed filter'],
  ];
  for (const [topic, filter, expected, why] of rows) {
    it(`${topic} ${expected ? '∈' : '∉'} ${filter}: ${why}`, () => assert.equal(topicMatchesFilter(topic, filter), expected));
  }
});

describe('filterCoveredBy', () => {
  const rows: [string, string, boolean, string][] = [
    // requested, allowed
    ['things/t1/#', 'things/t1/#', true, 'itself'],
    ['things/t1/a/+', 'things/t1/#', true, 'narrower under #'],
    ['things/t1', 'things/t1/#', true, 'the parent of #'],
    ['things/t1/a', 'things/t1/#', true, 'a topic under #'],
    ['#', 'things/t1/#', false, '# is wider'],
    ['things/#', 'things/t1/#', false, 'wider prefix'],
    ['things/+/x', 'things/t1/#', false, '+ spans other things'],
    ['+/x', '+/x', true, 'same +'],
    ['+/x', '+/+', true, '+ under +'],
    ['+/x', '#', true, 'anything non-$ under #'],
    ['+/+', '+/x', false, '+ is not a literal'],
    ['a/b', 'a/+', true, 'literal under +'],
    ['a/+', 'a/b', false, '+ not under a literal'],
    ['a/b', 'a/b/+', false, 'shorter than allowed'],
    ['a/b/c', 'a/b', false, 'longer than allowed'],
    ['a/#', 'a/+/#', false, 'a/# takes a, which a/+/# does not'],
    ['a/+/#', 'a/#', true, 'narrower #'],
    ['#', '#', true, '# covers #: neither reaches $ topics'],
    ['#', '+/#', true, 'at level 0, +/# is #'],
    ['+/#', '#', true, '+/# under #'],
    ['a/#', 'a/+', false, '# not under +'],
    ['$SYS/x', '#', false, '# does not cover $ topics [MQTT-4.7.2-1]'],
    ['$SYS/x', '+/x', false, '+ does not cover a $ first level'],
    ['$SYS/#', '$SYS/#', true, '$ spelled out'],
    ['$SYS/x', '$SYS/+', true, '$ then +'],
    ['a/$x', 'a/+', true, '$ rule is level 0 only'],
    ['a//b', 'a/+/b', true, 'empty level under +'],
    ['a/+/b', 'a//b', false, '+ not under an empty literal'],
    ['a/b/', 'a/b/#', true, 'trailing / under #'],
    ['a/b/', 'a/b', false, 'trailing / is a level'],
    ['/#', '/+/#', true, 'the parent of /# would be the empty topic, which does not exist'],
    ['a/#/b', '#', false, 'malformed requested'],
  ];
  for (const [requested, allowed, expected, why] of rows) {
    it(`${requested} ${expected ? '⊆' : '⊄'} ${allowed}: ${why}`, () => assert.equal(filterCoveredBy(requested, allowed), expected));
  }
});

describe('filtersOverlap', () => {
  const rows: [string, string, boolean, string][] = [
    ['things/#', 'things/t2/secret', true, 'a wide request meets a narrow deny'],
    ['things/t1/#', 'things/t2/#', false, 'disjoint subtrees'],
    ['a/+', 'a/b', true, '+ meets a literal'],
    ['a/+', '+/b', true, 'a/b'],
    ['a/+', 'a/b/c', false, 'lengths differ'],
    ['a', 'a/#', true, 'the parent of #'],
    ['a/+', 'a/#', true, 'below #'],
    ['#', '$SYS/x', false, 'no level-0 wildcard reaches $ [MQTT-4.7.2-1]'],
    ['+/x', '$SYS/x', false, 'no level-0 + reaches $'],
    ['$SYS/#', '$SYS/x', true, '$ spelled out'],
    ['#', '+', true, 'both wildcards'],
    ['a/b', 'a/c', false, 'literals differ'],
    ['+', '/#', false, 'the only common topic would be the empty one [MQTT-4.7.3-1]'],
  ];
  for (const [a, b, expected, why] of rows) {
    it(`${a} ${expected ? '∩' : '∅'} ${b}: ${why}`, () => {
      assert.equal(filtersOverlap(a, b), expected);
      assert.equal(filtersOverlap(b, a), expected, 'symmetric');
    });
  }
});

/**
 * Coverage and overlap checked against their definitions over a finite
 * world: every filter of up to 3 levels from {a, $x, '', +, #}, every topic
 * of up to 4 levels from {a, $x, '', c}. A counterexample topic never needs
 * more levels than the longer filter plus one, and `c` stands for every value
 * no filter spells out.
 */
describe('coverage and overlap agree with their definitions', () => {
  const product = (alphabet: string[], max: number): string[][] => {
    const out: string[][] = [];
    let layer: string[][] = [[]];
    for (let n = 1; n <= max; n++) {
      layer = layer.flatMap((prefix) => alphabet.map((l) => [...prefix, l]));
      out.push(...layer);
    }
    return out;
  };
  const filters = product(['a', '$x', '', '+', '#'], 3).filter((f) => isValidTopicFilter(f.join('/')));
  const topics = product(['a', '$x', '', 'c'], 4).filter((t) => isValidTopicName(t.join('/')));
  const matched = filters.map((f) => topics.map((t) => levelsMatch(t, f)));

  it('levelsCovered(r, a) iff every topic r matches, a matches', () => {
    let checked = 0;
    for (let i = 0; i < filters.length; i++) {
      for (let j = 0; j < filters.length; j++) {
        const expected = matched[i]!.every((m, k) => !m || matched[j]![k]!);
        assert.equal(levelsCovered(filters[i]!, filters[j]!), expected, `${filters[i]!.join('/')} ⊆ ${filters[j]!.join('/')}`);
        checked++;
      }
    }
    assert.ok(checked > 10_000, `${checked} pairs`);
  });

  it('levelsOverlap(a, b) iff some topic matches both', () => {
    for (let i = 0; i < filters.length; i++) {
      for (let j = 0; j < filters.length; j++) {
        const expected = matched[i]!.some((m, k) => m && matched[j]![k]!);
        assert.equal(levelsOverlap(filters[i]!, filters[j]!), expected, `${filters[i]!.join('/')} ∩ ${filters[j]!.join('/')}`);
      }
    }
  });

  it('splitLevels keeps empty levels', () => assert.deepEqual(splitLevels('/a//'), ['', 'a', '', '']));
});
