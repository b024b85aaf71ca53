import type { InstanceFacts } from '../../notice/notice.js';

/** The longest a found notice waits for instance facts that are not cached yet. */
export const NOTICE_FACTS_WAIT_MS = 250;

/** Hands over facts as they arrive, before the whole fetch is done. */
export type LearnFacts = (facts: InstanceFacts) => void;

/** A fact and the metadata item it is read from, on clouds that keep one value per item. */
export type FactItems = ReadonlyArray<readonly [keyof InstanceFacts, string]>;

/**
 * Instance facts, fetched once and kept once the instance id is known (a partial answer is
 * fetched again next time). Concurrent callers share one fetch. The fetch never throws:
 * providers resolve missing facts as undefined fields. A fetch may hand over facts as they
 * arrive (`learn`), so a notice that cannot wait for the slowest read still carries the rest.
 */
export class FactsCache {
  private facts: InstanceFacts | undefined;
  /** Every fact seen so far, from finished fetches and from the one under way. */
  private readonly known: InstanceFacts = {};
  private pending: Promise<InstanceFacts> | undefined;

  constructor(private readonly fetch: (signal: AbortSignal, learn: LearnFacts) => Promise<InstanceFacts>) {}

  get(signal: AbortSignal): Promise<InstanceFacts> {
    if (this.facts) return Promise.resolve(this.facts);
    this.pending ??= this.fetch(signal, (facts) => Object.assign(this.known, facts))
      .then((facts) => {
        Object.assign(this.known, facts);
        if (facts.id) this.facts = facts;
        return facts;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  /**
   * The facts, waiting at most `limitMs` for them, else the facts known by then: a notice
   * must not wait on a slow metadata service for facts that only decorate it.
   */
  async within(limitMs: number, signal: AbortSignal): Promise<InstanceFacts> {
    if (this.facts) return this.facts;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<InstanceFacts>((resolve) => (timer = setTimeout(() => resolve({ ...this.known }), limitMs)));
    try {
      return await Promise.race([this.get(signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The facts a found notice carries: `within(NOTICE_FACTS_WAIT_MS)`, the same bound on every cloud. */
  forNotice(signal: AbortSignal): Promise<InstanceFacts> {
    return this.within(NOTICE_FACTS_WAIT_MS, signal);
  }
}

/**
 * Reads every fact from its own item at once (`read` gives the body, null when absent);
 * a failed or blank read leaves that fact out. Each fact is learnt as soon as it arrives.
 */
export async function readFactItems(items: FactItems, read: (path: string) => Promise<string | null>, learn: LearnFacts): Promise<InstanceFacts> {
  const facts: InstanceFacts = {};
  await Promise.all(
    items.map(async ([field, path]) => {
      const value = (await read(path).catch(() => null))?.trim();
      if (!value) return;
      facts[field] = value;
      learn({ [field]: value });
    }),
  );
  return facts;
}
