import { hostname } from 'node:os';

export interface HostFacts {
  hostname: string;
  pid: number;
  agentVersion: string;
}

export const AGENT_VERSION = '0.1.0';

export function hostFacts(): HostFacts {
  return { hostname: hostname(), pid: process.pid, agentVersion: AGENT_VERSION };
}
