import { writeFileSync } from 'node:fs';

/**
 * A stand-in for a GPU training job: writes its pidfile, "trains", checkpoints on SIGUSR1
 * and exits on SIGTERM. Used by the demo and by tests that need a real signalled process.
 */
const [pidfile, label = 'trainer'] = process.argv.slice(2);
if (pidfile) writeFileSync(pidfile, `${process.pid}\n`);
const say = (text: string) => process.stdout.write(`${JSON.stringify({ workload: label, pid: process.pid, msg: text })}\n`);
say('training started');
let step = 0;
const timer = setInterval(() => (step += 1), 100);
process.on('SIGUSR1', () => say(`SIGUSR1 received: checkpoint written at step ${step}`));
process.on('SIGTERM', () => {
  say('SIGTERM received: exiting cleanly');
  clearInterval(timer);
  process.exit(0);
});
