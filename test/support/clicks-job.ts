/**
 * A job type that exists only in tests, to show that a third type is a folder
 * and a registry line: it counts each user's page views (`clicks` in
 * `user:<id>`), and every `clicks.every`-th view emits a milestone that its own
 * output stage records as `milestone:<user>:<n>`. No model: it scores nothing.
 */
import type { JobConfigFragment } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../../workers/events/types.js';
import { emptyOutputs, type JobDefinition, type JobOutputs, type OutputStage, type StateMeta, type StreamJob } from '../../workers/runtime/job.js';
import type { ResultSink } from '../../workers/runtime/sink.js';
import { UserTable, type Page, type StateStore } from '../../workers/state/table.js';

const CLICKS_FORMAT = { name: 'clicks', version: 1, features: [] };

/** One 8-byte record per user: the page views seen. */
class ClicksTable extends UserTable {
  readonly format = CLICKS_FORMAT;
  protected readonly recordBytes = 8;

  constructor(store?: StateStore) {
    super(store, 8);
  }

  protected init(p: Page, b: number): void {
    p.u32[b >> 2] = 0;
  }

  views(slot: number): number {
    return this.page(slot).u32[this.base(slot) >> 2]!;
  }

  addView(slot: number): number {
    this.touch(slot);
    const page = this.page(slot);
    const at = this.base(slot) >> 2;
    page.u32[at] = page.u32[at]! + 1;
    return page.u32[at]!;
  }
}

interface ClicksState {
  readonly table: ClicksTable;
  watermark: number;
}

export interface Milestone {
  userId: string;
  views: number;
}

export const clicksConfig: JobConfigFragment = {
  type: 'clicks',
  sections: {
    clicks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { every: { type: 'integer', minimum: 1, default: 3, 'x-env': 'CLICKS_EVERY' } },
    },
  },
  modelPathEnv: 'CLICKS_MODEL_PATH',
};

class ClicksJob implements StreamJob<ClicksState, Milestone> {
  readonly type = 'clicks';
  readonly modelVersion = 'none';

  readonly stateFormat = CLICKS_FORMAT;

  constructor(
    private readonly every: number,
    private readonly store: StateStore,
  ) {}

  newState(): ClicksState {
    return { table: this.newTable(), watermark: -1 };
  }

  newTable(): ClicksTable {
    return new ClicksTable(this.store);
  }

  meta(state: ClicksState): StateMeta {
    return { watermark: state.watermark };
  }

  restored(table: ClicksTable, meta: StateMeta): ClicksState {
    return { table, watermark: meta.watermark ?? -1 };
  }

  fromLegacy(): ClicksState {
    throw new Error('the clicks job never had version 1 checkpoints');
  }

  watermark(state: ClicksState): number {
    return state.watermark;
  }

  async process(state: ClicksState, events: readonly UserEvent[]): Promise<JobOutputs<Milestone>> {
    const out = emptyOutputs<Milestone>();
    const touched = new Set<number>();
    for (const e of events) {
      state.watermark = Math.max(state.watermark, e.eventTime);
      if (e.eventType !== 'page_view') continue;
      const slot = state.table.slot(e.userId);
      const views = state.table.addView(slot);
      touched.add(slot);
      if (views % this.every === 0) out.emits.push({ userId: e.userId, views });
    }
    for (const slot of touched) out.writes.push({ userId: state.table.id(slot), fields: { clicks: String(state.table.views(slot)) } });
    return out;
  }

  async advanceTo(): Promise<JobOutputs<Milestone>> {
    return emptyOutputs();
  }
}

class MilestoneStage implements OutputStage<Milestone> {
  readonly target = 'milestones';

  constructor(private readonly sink: ResultSink) {}

  async deliver(items: readonly Milestone[]): Promise<void> {
    await this.sink.writeRecords(items.map((m) => ({ key: `milestone:${m.userId}:${m.views}`, fields: { user_id: m.userId, views: String(m.views) } })));
  }
}

export const clicks: JobDefinition<ClicksState, Milestone> = {
  config: clicksConfig,
  loadModel: async () => ({ version: 'none', score: async (_features, rows) => new Float32Array(rows) }),
  job: ({ config, state }) => new ClicksJob((config.clicks as { every: number }).every, state),
  output: ({ sink }) => new MilestoneStage(sink),
};
