import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/log.js';
import { detectProvider } from '../../src/providers/detect.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/metadata-server.js';

/** Each cloud's world-readable DMI files, as read on real machines. */
const MACHINES: Record<string, Record<string, string>> = {
  'aws nitro': { sys_vendor: 'Amazon EC2\n', product_name: 'g5.xlarge\n', bios_vendor: 'Amazon EC2\n' },
  'aws xen': { sys_vendor: 'Xen\n', product_name: 'HVM domU\n', bios_version: '4.11.amazon\n' },
  gcp: { sys_vendor: 'Google\n', product_name: 'Google Compute Engine\n', bios_vendor: 'Google\n' },
  azure: { sys_vendor: 'Microsoft Corporation\n', product_name: 'Virtual Machine\n', chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77\n' },
  alibaba: { sys_vendor: 'Alibaba Cloud\n', product_name: 'Alibaba Cloud ECS\n' },
  tencent: { sys_vendor: 'Tencent Cloud\n', product_name: 'CVM\n' },
};

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'info', destination }), lines };
}

describe('detectProvider', () => {
  let dir: string;
  let simulator: RunningSimulator | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'preemptd-dmi-'));
  });
  afterEach(async () => {
    await simulator?.close();
    simulator = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function fakeDmi(files: Record<string, string>): Promise<void> {
    for (const [name, value] of Object.entries(files)) await writeFile(join(dir, name), value);
  }

  test.each([
    ['aws nitro', 'aws', 'DMI sys_vendor is "Amazon EC2"'],
    ['aws xen', 'aws', 'DMI bios_version is "4.11.amazon"'],
    ['gcp', 'gcp', 'DMI product_name is "Google Compute Engine"'],
    ['azure', 'azure', 'DMI chassis_asset_tag is "7783-7084-3265-9085-8269-3286-77"'],
    ['alibaba', 'alibaba', 'DMI product_name is "Alibaba Cloud ECS"'],
    ['tencent', 'tencent', 'DMI sys_vendor is "Tencent Cloud"'],
  ])('recognises %s from its DMI files without any network call', async (machine, provider, how) => {
    await fakeDmi(MACHINES[machine]!);
    const { log, lines } = captureLog();
    // probe: true with an address nothing listens on: a DMI answer must not need it.
    await expect(detectProvider({ dmiDir: dir, probe: true, metadataUrl: 'http://127.0.0.1:9', log })).resolves.toEqual({ provider, how });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.some((line) => String(line.msg).includes(`provider ${provider} detected`))).toBe(true);
  });

  test('a plain Hyper-V machine (Microsoft sys_vendor without the Azure chassis tag) is not Azure', async () => {
    await fakeDmi({ sys_vendor: 'Microsoft Corporation\n', product_name: 'Virtual Machine\n', chassis_asset_tag: 'None\n' });
    await expect(detectProvider({ dmiDir: dir, probe: false, log: captureLog().log })).rejects.toMatchObject({ code: 'ERR_PROVIDER_DETECT' });
  });

  test.each(['aws', 'gcp'] as const)('a missing DMI folder falls back to probes that recognise the %s simulator', async (provider) => {
    simulator = await startSimulator({ provider });
    const detection = await detectProvider({ dmiDir: join(dir, 'missing'), probe: true, metadataUrl: simulator.url, log: captureLog().log });
    expect(detection.provider).toBe(provider);
    expect(detection.how).toContain(`metadata probe to ${simulator.url}`);
  });

  test('unknown DMI and no answering metadata service is a clear error naming what was tried', async () => {
    await fakeDmi({ sys_vendor: 'QEMU\n', product_name: 'Standard PC (Q35 + ICH9, 2009)\n' });
    const attempt = detectProvider({ dmiDir: dir, probe: true, metadataUrl: 'http://127.0.0.1:9', log: captureLog().log });
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_PROVIDER_DETECT' });
    await expect(attempt).rejects.toThrow(`DMI files in ${dir}`);
    await expect(attempt).rejects.toThrow('metadata probes (gcp, aws, azure, alibaba, tencent) against http://127.0.0.1:9: no cloud answered');
    await expect(attempt).rejects.toThrow('Set provider:');
  });

  test('with probes off, an unknown machine says the probes were not tried', async () => {
    await expect(detectProvider({ dmiDir: join(dir, 'missing'), probe: false, log: captureLog().log })).rejects.toThrow('metadata probes are off');
  });
});
