import type { Daemon } from './daemon.js';
import type { DaemonEvents } from './types.js';

/** Listeners an observer (metrics, status, systemd) puts on a daemon, removed together. */
export class DaemonSubscription {
  private readonly listeners: Array<[keyof DaemonEvents, (...args: never[]) => void]> = [];

  constructor(private readonly daemon: Daemon) {}

  on<K extends keyof DaemonEvents>(event: K, listener: (...args: DaemonEvents[K]) => void): this {
    this.daemon.on(event, listener as never);
    this.listeners.push([event, listener as never]);
    return this;
  }

  close(): void {
    for (const [event, listener] of this.listeners) this.daemon.off(event, listener as never);
    this.listeners.length = 0;
  }
}
