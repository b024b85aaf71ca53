import type { InstanceFacts } from '../notice.js';

/**
 * Instance facts, fetched once and kept once the instance id is known (a partial answer is
 * fetched again next time). Concurrent callers share one fetch. The fetch never throws:
 * providers resolve missing facts as undefined fields.
 */
export class FactsCache {
  private facts: InstanceFacts | undefined;
  private pending: Promise<InstanceFacts> | undefined;

  constructor(private readonly fetch: (signal: AbortSignal) => Promise<InstanceFacts>) {}

  get(signal: AbortSignal): Promise<InstanceFacts> {
    if (this.facts) return Promise.resolve(this.facts);
    this.pending ??= this.fetch(signal)
      .then((facts) => {
        if (facts.id) this.facts = facts;
        return facts;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  /**
   * The facts, waiting at most `limitMs` for them: a notice must not wait on a slow
   * metadata service for facts that only decorate it.
   */
  async within(limitMs: number, signal: AbortSignal): Promise<InstanceFacts> {
    if (this.facts) return this.facts;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<InstanceFacts>((resolve) => (timer = setTimeout(() => resolve({}), limitMs)));
    try {
      return await Promise.race([this.get(signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
