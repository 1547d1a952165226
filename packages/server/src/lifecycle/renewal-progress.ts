/**
 * The one place where a renewal moves a rotation campaign's item on, whichever
 * way the device renewed (docs/device-protocol.md: "Renewal over EST is
 * equivalent to renew"):
 *
 *  - over MQTT (renewal.ts) the store moves the item inside the renewal's own
 *    transaction (issued, confirmed, retired) and this only announces it;
 *  - over EST (provisioning/est.ts, reenrollment-grace.ts) the re-enrollment
 *    is committed first and then reported here: `issued` when the new
 *    certificate is handed out, `confirmed` at its first use, `retired` when
 *    the old certificate is revoked.
 *
 * Every move is a compare-and-set on the item's state, so a report that
 * comes twice (a retried request, two nodes) moves it once, and an item
 * that failed meanwhile (deadline, cancel) stays failed.
 */
import type { EventBus } from '../events/bus.js';
import type { CampaignItemState, CampaignStore, CertificateRecord } from '../store/index.js';

export type ProgressState = Extract<CampaignItemState, 'issued' | 'confirmed' | 'retired'>;

export interface RenewalProgressDeps {
  readonly store: Pick<CampaignStore, 'openItemOfCertificate' | 'itemOfNewCertificate' | 'setCampaignItemState'>;
  readonly bus: Pick<EventBus, 'emit'>;
}

export class RenewalProgress {
  constructor(private readonly deps: RenewalProgressDeps) {}

  /** Announces a move the store already made (renewal over MQTT). */
  changed(campaignId: string, old: Pick<CertificateRecord, 'id' | 'thingName'>, state: ProgressState): void {
    this.deps.bus.emit('campaign.item-changed', { campaignId, certificateId: old.id, thingName: old.thingName, state });
  }

  /** `newId` was issued to replace `old` outside renewal.ts: its open item, if any, moves to `issued`. Returns the campaign. */
  async issued(old: Pick<CertificateRecord, 'id' | 'thingName'>, newId: string): Promise<string | undefined> {
    const item = await this.deps.store.openItemOfCertificate(old.id);
    if (!item) return undefined;
    const moved = await this.deps.store.setCampaignItemState(item.campaignId, old.id, ['pending', 'notified', 'issued'], 'issued', { newCertificateId: newId, reason: null });
    if (moved) this.changed(item.campaignId, old, 'issued');
    return item.campaignId;
  }

  /** The device used `newId` for the first time: the item it was issued for is confirmed. */
  confirmed(newId: string): Promise<boolean> {
    return this.#move(newId, ['pending', 'notified', 'issued'], 'confirmed');
  }

  /** The certificate `newId` replaced was revoked: the item is retired (confirmed first, if that report was lost). */
  async retired(newId: string): Promise<boolean> {
    await this.confirmed(newId);
    return this.#move(newId, ['confirmed'], 'retired');
  }

  async #move(newId: string, from: readonly CampaignItemState[], to: ProgressState): Promise<boolean> {
    const item = await this.deps.store.itemOfNewCertificate(newId);
    if (!item || !from.includes(item.state)) return false;
    if (!(await this.deps.store.setCampaignItemState(item.campaignId, item.certificateId, from, to))) return false;
    this.changed(item.campaignId, { id: item.certificateId, thingName: item.thingName }, to);
    return true;
  }
}
