import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from './index.js';
import { T0, at, caFixture, certificateFixture, rejectsWith, uniqueName } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';

/** Creates a chain of `levels` groups, root first; returns their names. */
async function chain(store: Store, levels: number, prefix = uniqueName('g')): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < levels; i += 1) {
    const name = `${prefix}-${i}`;
    await store.createGroup({ name, parent: names.at(-1) ?? null });
    names.push(name);
  }
  return names;
}

await describeOnBothDialects('thing groups', ({ store, fresh }) => {
  it('nests 7 levels, and groupsOfThing returns every ancestor once at its nearest depth', async () => {
    const s = store();
    const levels = await chain(s, 7);
    const side = uniqueName('side');
    await s.createGroup({ name: side, parent: levels[2], description: 'a branch', attributes: { site: 'Lyon' } });
    const thing = uniqueName('pump');
    await s.createThing({ name: thing });
    await s.addThingToGroup(levels[6] as string, thing);
    await s.addThingToGroup(side, thing);
    const found = await s.groupsOfThing(thing);
    const byName = new Map(found.map((g) => [g.name, g.depth]));
    assert.equal(found.length, 8);
    for (let i = 0; i < 7; i += 1) assert.equal(byName.get(levels[i] as string), i <= 2 ? Math.min(6 - i, 3 - i) : 6 - i);
    assert.equal(byName.get(side), 0);
    assert.deepEqual(found.map((g) => g.depth), [...found.map((g) => g.depth)].sort((a, b) => a - b), 'nearest first');
    const sideRecord = found.find((g) => g.name === side);
    assert.deepEqual({ ...sideRecord, createdAt: undefined }, {
      name: side, parentName: levels[2], description: 'a branch', attributes: { site: 'Lyon' }, createdAt: undefined, depth: 0,
    });
    assert.deepEqual(await s.groupsOfThing(uniqueName('lonely')), []);
  });

  it('refuses nesting deeper than 16 levels, on create and on move (counting the moved subtree)', async () => {
    const s = store();
    const levels = await chain(s, 16);
    await rejectsWith(s.createGroup({ name: uniqueName('g17'), parent: levels[15] }), 'invalid-state', /16 levels/);
    const subtree = await chain(s, 3); // moving it under level 14 would make 17 levels
    await rejectsWith(s.setGroupParent(subtree[0] as string, levels[13] as string), 'invalid-state', /16 levels/);
    const moved = await s.setGroupParent(subtree[0] as string, levels[12] as string); // exactly 16
    assert.equal(moved.parentName, levels[12]);
  });

  it('refuses cycles: a group under itself or under its own descendant', async () => {
    const s = store();
    const [a, b, c] = (await chain(s, 3)) as [string, string, string];
    await rejectsWith(s.setGroupParent(a, a), 'invalid-state', /cycle/);
    await rejectsWith(s.setGroupParent(a, c), 'invalid-state', /cycle/);
    await rejectsWith(s.setGroupParent(a, 'ghost-group'), 'not-found', /ghost-group/);
    await rejectsWith(s.setGroupParent('ghost-group', a), 'not-found', /ghost-group/);
    assert.equal((await s.setGroupParent(c, null)).parentName, null);
    assert.equal((await s.setGroupParent(a, c)).parentName, c); // c is a root now: no cycle
    assert.equal((await s.getGroup(b))?.parentName, a);
  });

  it('never lets two concurrent moves make a cycle', async () => {
    const s = store();
    for (let round = 0; round < 5; round += 1) {
      const [x, y] = [uniqueName('x'), uniqueName('y')];
      await s.createGroup({ name: x });
      await s.createGroup({ name: y });
      const results = await Promise.allSettled([s.setGroupParent(x, y), s.setGroupParent(y, x)]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}`);
      const parents = [(await s.getGroup(x))?.parentName, (await s.getGroup(y))?.parentName];
      assert.ok(parents.includes(null), 'one of them is still a root');
    }
  });

  it('adds, lists and removes members; deleting a group takes its members and policy attachments', async () => {
    const s = store();
    const [parent, group] = (await chain(s, 2)) as [string, string];
    const prefix = uniqueName('m');
    const names = ['c', 'a', 'b'].map((x) => `${prefix}-${x}`);
    for (const name of names) {
      await s.createThing({ name, attributes: { n: name } });
      await s.addThingToGroup(group, name);
    }
    await rejectsWith(s.addThingToGroup(group, names[0] as string), 'conflict');
    await rejectsWith(s.addThingToGroup('ghost-group', names[0] as string), 'not-found', /group ghost-group/);
    await rejectsWith(s.addThingToGroup(group, 'ghost-thing'), 'not-found', /thing ghost-thing/);
    const first = await s.listGroupMembers(group, { limit: 2 });
    const second = await s.listGroupMembers(group, { limit: 2, cursor: first.next });
    assert.deepEqual([...first.items, ...second.items].map((t) => t.name), [...names].sort());
    assert.deepEqual(first.items[0]?.attributes, { n: [...names].sort()[0] });
    assert.equal(second.next, undefined);
    await rejectsWith(s.listGroupMembers('ghost-group', { limit: 2 }), 'not-found');
    await s.removeThingFromGroup(group, names[0] as string);
    await rejectsWith(s.removeThingFromGroup(group, names[0] as string), 'not-found', /not in group/);

    await s.createPolicy(uniqueName('p'), { Statement: [] }).then((p) => s.attachPolicy(p.name, { type: 'group', id: group }));
    await rejectsWith(s.deleteGroup(parent), 'invalid-state', /child groups/);
    await s.deleteGroup(group);
    assert.equal(await s.getGroup(group), undefined);
    assert.deepEqual(await s.policiesOfTarget({ type: 'group', id: group }), []);
    assert.deepEqual(await s.groupsOfThing(names[1] as string), []);
    await s.deleteGroup(parent); // a leaf now
    await rejectsWith(s.deleteGroup(parent), 'not-found');
  });

  it('lists groups by name across pages and validates input', async () => {
    const { store: s } = await fresh();
    for (const name of ['b', 'c', 'a']) await s.createGroup({ name });
    const first = await s.listGroups({ limit: 2 });
    assert.deepEqual(first.items.map((g) => g.name), ['a', 'b']);
    assert.deepEqual((await s.listGroups({ limit: 2, cursor: first.next })).items.map((g) => g.name), ['c']);
    await rejectsWith(s.createGroup({ name: 'a' }), 'conflict', /already exists/);
    await rejectsWith(s.createGroup({ name: 'd', parent: 'ghost' }), 'not-found', /ghost/);
    await rejectsWith(s.createGroup({ name: 'd', attributes: { n: 1 as unknown as string } }), 'bad-request');
    await rejectsWith(s.createGroup({ name: 'd', description: 5 as unknown as string }), 'bad-request');
    await rejectsWith(s.listGroups({ limit: 2, cursor: (await s.listThings({ limit: 1 })).next ?? 'x' }), 'bad-request');
  });
});

await describeOnBothDialects('thing changes', ({ fresh }) => {
  it('replaces attributes and stamps updatedAt from the clock', async () => {
    let now = T0;
    const { store: s } = await fresh({ now: () => now });
    await s.createThing({ name: 'pump', attributes: { a: '1', b: '2' } });
    now = at(60_000);
    const updated = await s.updateThing('pump', { attributes: { c: '3' } });
    assert.deepEqual(updated, { name: 'pump', attributes: { c: '3' }, createdAt: T0, updatedAt: at(60_000) });
    assert.deepEqual(await s.getThing('pump'), updated);
    await rejectsWith(s.updateThing('ghost', { attributes: {} }), 'not-found');
    await rejectsWith(s.updateThing('pump', { attributes: { c: 3 as unknown as string } }), 'bad-request');
  });

  it('refuses to delete a thing while certificates are attached, then deletes it with its memberships', async () => {
    const { store: s } = await fresh();
    const ca = caFixture();
    await s.insertCa(ca);
    await s.createThing({ name: 'pump' });
    await s.createGroup({ name: 'fleet' });
    await s.addThingToGroup('fleet', 'pump');
    const certs = [certificateFixture(ca.id, { thingName: 'pump' }), certificateFixture(ca.id, { thingName: 'pump', status: 'revoked' })];
    for (const cert of certs) await s.insertCertificate(cert);
    await rejectsWith(s.deleteThing('pump'), 'invalid-state', /certificates attached/);
    await s.detachCertificate(certs[0]?.id as string);
    await rejectsWith(s.deleteThing('pump'), 'invalid-state', /certificates attached/); // revoked ones count too
    await s.detachCertificate(certs[1]?.id as string);
    await s.deleteThing('pump');
    assert.equal(await s.getThing('pump'), undefined);
    assert.deepEqual((await s.listGroupMembers('fleet', { limit: 10 })).items, []);
    await rejectsWith(s.deleteThing('pump'), 'not-found');
  });
});
