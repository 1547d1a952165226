/** Things and thing groups: the decisions around the store's writes, each audited. */
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { Page, PageRequest, ThingGroupAncestor, ThingGroupRecord, ThingGroupStore, ThingRecord, ThingStore } from '../store/index.js';
import { audit, type Actor } from './actor.js';
import { checkAttributes, checkDescription, checkGroupName, checkThingName } from './things.js';

export interface ThingRegistryDeps {
  readonly things: ThingStore;
  readonly groups: ThingGroupStore;
  readonly bus: Pick<EventBus, 'emit'>;
}

export class ThingRegistry {
  constructor(private readonly deps: ThingRegistryDeps) {}

  async createThing(actor: Actor, name: unknown, attributes?: unknown): Promise<ThingRecord> {
    const n = checkThingName(name);
    return this.deps.things.createThing({ name: n, attributes: checkAttributes(attributes) }, audit(actor, 'thing.create', `thing:${n}`));
  }

  async getThing(name: string): Promise<ThingRecord & { groups: ThingGroupAncestor[] }> {
    const t = await this.deps.things.getThing(name);
    if (!t) throw new CertfleetError('not-found', `no thing named ${name}`);
    return { ...t, groups: await this.deps.groups.groupsOfThing(name) };
  }

  async updateThing(actor: Actor, name: string, attributes: unknown): Promise<ThingRecord> {
    const attrs = checkAttributes(attributes);
    const t = await this.deps.things.updateThing(name, { attributes: attrs }, audit(actor, 'thing.update', `thing:${name}`, { attributes: attrs }));
    this.deps.bus.emit('thing.changed', { thingName: name });
    return t;
  }

  async deleteThing(actor: Actor, name: string): Promise<void> {
    await this.deps.things.deleteThing(name, audit(actor, 'thing.delete', `thing:${name}`));
    this.deps.bus.emit('thing.changed', { thingName: name });
  }

  async createGroup(actor: Actor, req: { name: unknown; parent?: unknown; description?: unknown; attributes?: unknown }): Promise<ThingGroupRecord> {
    const name = checkGroupName(req.name);
    const parent = req.parent === undefined || req.parent === null ? null : checkGroupName(req.parent);
    const description = checkDescription(req.description);
    return this.deps.groups.createGroup(
      { name, parent, ...(description !== undefined ? { description } : {}), attributes: checkAttributes(req.attributes) },
      audit(actor, 'group.create', `group:${name}`, { parent }),
    );
  }

  async getGroup(name: string): Promise<ThingGroupRecord> {
    const g = await this.deps.groups.getGroup(name);
    if (!g) throw new CertfleetError('not-found', `no thing group named ${name}`);
    return g;
  }

  listGroups(page: PageRequest): Promise<Page<ThingGroupRecord>> {
    return this.deps.groups.listGroups(page);
  }

  async moveGroup(actor: Actor, name: string, parent: unknown): Promise<ThingGroupRecord> {
    const p = parent === null ? null : checkGroupName(parent);
    const g = await this.deps.groups.setGroupParent(name, p, audit(actor, 'group.move', `group:${name}`, { parent: p }));
    this.deps.bus.emit('policy.changed', { policyName: '*' });
    return g;
  }

  async deleteGroup(actor: Actor, name: string): Promise<void> {
    await this.deps.groups.deleteGroup(name, audit(actor, 'group.delete', `group:${name}`));
    this.deps.bus.emit('policy.changed', { policyName: '*' });
  }

  async addThing(actor: Actor, group: string, thing: string): Promise<void> {
    await this.deps.groups.addThingToGroup(group, thing, audit(actor, 'group.add-thing', `group:${group}`, { thing }));
    this.deps.bus.emit('thing.changed', { thingName: thing });
  }

  async removeThing(actor: Actor, group: string, thing: string): Promise<void> {
    await this.deps.groups.removeThingFromGroup(group, thing, audit(actor, 'group.remove-thing', `group:${group}`, { thing }));
    this.deps.bus.emit('thing.changed', { thingName: thing });
  }
}
