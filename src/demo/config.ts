import type { ProviderName } from '../notice/notice.js';

export interface DemoSettings {
  provider: ProviderName;
  metadataUrl: string;
  stateDir: string;
  /** Where the trainer could read the notice (docs/operations.md "Applications can ask"). */
  noticeFile: string;
  receiverUrl: string;
  pidfile: string;
}

/** The demo's config, the same shape a user puts in /etc/preemptd/config.yaml; its dry run must fit every cloud's window. */
export function demoConfig({ provider, metadataUrl, stateDir, noticeFile, receiverUrl, pidfile }: DemoSettings): string {
  return `# The demo's config: the same shape you would put in /etc/preemptd/config.yaml
provider: ${provider}
metadataUrl: ${metadataUrl}
pollInterval: 1s
stateDir: ${stateDir}
noticeFile: ${noticeFile}
safetyMargin: 5s
steps:
  - name: tell-ops
    webhook: { url: "${receiverUrl}", send: both }
  - name: checkpoint
    signal: { pidfile: ${pidfile}, signal: SIGUSR1 }
  - name: stop-trainer
    after: [checkpoint]
    signal: { pidfile: ${pidfile}, signal: SIGTERM, waitExit: 2s, killAfter: 10s }
`;
}
