import got from 'got';

/**
 * The idle-cost baseline: the 20-line poller users write by hand, but with got and an
 * IMDSv2 token: one GET of spot/instance-action per second, nothing else.
 */
const [baseUrl] = process.argv.slice(2);
const token = await got.put(`${baseUrl}/latest/api/token`, { headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } }).text();
setInterval(() => {
  got(`${baseUrl}/latest/meta-data/spot/instance-action`, { headers: { 'x-aws-ec2-metadata-token': token }, throwHttpErrors: false, retry: { limit: 0 } })
    .text()
    .catch((error: unknown) => process.stderr.write(`poll failed: ${String(error)}\n`));
}, 1000);
