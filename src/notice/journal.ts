import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import { writeFileAtomically } from '../lib/write-atomically.js';
import type { StepSummary } from './event.js';
import { stateDirError } from './state-dir-error.js';
import type { Logger } from '../lib/log.js';
import { NOTICE_KINDS, noticeToJSON, SOURCE_NAMES, type Notice } from './notice.js';

export type NoticeStatus = 'new' | 'in_progress' | 'done';

/** A notice begun but not finished before the agent stopped, with what it had done. */
export interface UnfinishedNotice {
  notice: Notice;
  begunAt: number;
  finishedSteps: Map<string, StepSummary>;
}

/** Enough of a plan result to close a notice (PlanResult fits). */
export interface FinishedPlan {
  finishedAt: number;
  slackMs: number | null;
}

const JOURNAL_FILE = 'journal.json';
const TEMP_PREFIX = `${JOURNAL_FILE}.tmp-`;
const JOURNAL_VERSION = 1;
/** Old notices only matter for dedupe of repeats; the cloud repeats a notice for minutes, not weeks. */
export const JOURNAL_KEEP_NOTICES = 200;

const stepSummarySchema = z.object({
  name: z.string(),
  type: z.string(),
  status: z.enum(['ok', 'failed', 'timed_out', 'skipped']),
  ms: z.number(),
  error: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});

const isoDate = z.iso.datetime({ offset: true });

const entrySchema = z.object({
  notice: z.object({
    id: z.string(),
    provider: z.enum([...SOURCE_NAMES, 'local']),
    kind: z.enum(NOTICE_KINDS),
    deadline: isoDate.nullable(),
    detectedAt: isoDate,
    instance: z.record(z.string(), z.unknown()),
    raw: z.unknown(),
    advisory: z.boolean().optional(),
    reasons: z.array(z.string()).optional(),
  }),
  status: z.enum(['in_progress', 'done']),
  begunAt: z.number(),
  finishedAt: z.number().optional(),
  slackMs: z.number().nullable().optional(),
  steps: z.record(z.string(), stepSummarySchema),
});
type Entry = z.infer<typeof entrySchema>;

const fileSchema = z.object({ version: z.literal(JOURNAL_VERSION), notices: z.array(entrySchema) });

/**
 * The handled-notice journal in `stateDir`: which notices were begun or finished and which
 * of their steps finished, so a restart neither repeats finished steps nor drops unfinished
 * ones. The whole file is rewritten atomically on every change (temp file, fsync, rename,
 * fsync dir); it stays a few tens of KB, and a notice causes only a handful of writes.
 * Writes never throw: a failed write is logged and the next change tries again.
 */
export class Journal {
  private readonly entries: Map<string, Entry>;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    readonly stateDir: string,
    private readonly log: Logger,
    entries: Entry[],
  ) {
    this.entries = new Map(entries.map((entry) => [entry.notice.id, entry]));
  }

  get path(): string {
    return join(this.stateDir, JOURNAL_FILE);
  }

  /**
   * Opens (creating `stateDir` with mode 0700) and loads the journal; a corrupt file is moved
   * aside. Throws ERR_STATE_DIR (exit 78), naming the path, when the directory cannot hold it.
   */
  static async open(stateDir: string, log: Logger): Promise<Journal> {
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await removeTempFiles(stateDir, log);
      // Unwritable now means every write of the plan would fail later, one log line each.
      await writeFile(join(stateDir, `${TEMP_PREFIX}probe`), '', { mode: 0o600 });
      await unlink(join(stateDir, `${TEMP_PREFIX}probe`));
    } catch (error) {
      throw stateDirError(stateDir, error, stateDir);
    }
    try {
      return new Journal(stateDir, log, await load(stateDir, log));
    } catch (error) {
      // A read error carries no path of its own.
      throw stateDirError(stateDir, error, join(stateDir, JOURNAL_FILE));
    }
  }

  status(noticeId: string): NoticeStatus {
    return this.entries.get(noticeId)?.status ?? 'new';
  }

  /** Records that the plan for this notice started; a notice begun before is left as it is. */
  begin(notice: Notice, now = Date.now()): Promise<void> {
    if (this.entries.has(notice.id)) return this.writing;
    this.entries.set(notice.id, {
      notice: noticeToJSON(notice) as Entry['notice'],
      status: 'in_progress',
      begunAt: now,
      steps: {},
    });
    this.prune();
    return this.save();
  }

  recordStep(noticeId: string, summary: StepSummary): Promise<void> {
    const entry = this.entries.get(noticeId);
    if (!entry) {
      this.log.warn({ noticeId, step: summary.name }, 'journal: step recorded for a notice that was never begun; ignored');
      return this.writing;
    }
    entry.steps[summary.name] = summary;
    return this.save();
  }

  finish(noticeId: string, result: FinishedPlan): Promise<void> {
    const entry = this.entries.get(noticeId);
    if (!entry) {
      this.log.warn({ noticeId }, 'journal: finish for a notice that was never begun; ignored');
      return this.writing;
    }
    entry.status = 'done';
    entry.finishedAt = result.finishedAt;
    entry.slackMs = result.slackMs;
    return this.save();
  }

  finishedSteps(noticeId: string): Map<string, StepSummary> {
    return new Map(Object.entries(this.entries.get(noticeId)?.steps ?? {}));
  }

  /** Notices begun but not finished, oldest first, so the daemon can resume them. */
  unfinished(): UnfinishedNotice[] {
    return [...this.entries.values()]
      .filter((entry) => entry.status === 'in_progress')
      .map((entry) => ({
        notice: noticeFromJSON(entry.notice),
        begunAt: entry.begunAt,
        finishedSteps: new Map(Object.entries(entry.steps)),
      }));
  }

  /** Resolves once every change made so far is on disk (or its write failed and was logged). */
  flush(): Promise<void> {
    return this.writing;
  }

  private prune(): void {
    // Map keeps insertion order, so the first keys are the oldest notices.
    for (const id of this.entries.keys()) {
      if (this.entries.size <= JOURNAL_KEEP_NOTICES) break;
      this.entries.delete(id);
    }
  }

  /** Coalesces changes: at most one write runs, and one more follows with everything since. */
  private save(): Promise<void> {
    if (this.dirty) return this.writing;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      const text = JSON.stringify({ version: JOURNAL_VERSION, notices: [...this.entries.values()] });
      try {
        await writeFileAtomically(join(this.stateDir, JOURNAL_FILE), text, TEMP_PREFIX);
      } catch (error) {
        this.log.error({ err: error, path: this.path }, 'journal write failed; will retry on the next change');
      }
    });
    return this.writing;
  }
}

async function load(stateDir: string, log: Logger): Promise<Entry[]> {
  const path = join(stateDir, JOURNAL_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  let problem: string;
  try {
    const parsed = fileSchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data.notices;
    problem = `unexpected content: ${parsed.error.issues[0]?.message ?? 'invalid'}`;
  } catch (error) {
    problem = `not valid JSON (${errorMessage(error)})`;
  }
  const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await rename(path, aside);
  log.error(
    { path, movedTo: aside, problem },
    'journal is corrupt: moved aside, starting with an empty journal (notices handled before may run again)',
  );
  return [];
}


/** A crash between writing and renaming leaves a temp file; it never holds the only copy. */
async function removeTempFiles(dir: string, log: Logger): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    await unlink(join(dir, name)).catch((error: unknown) =>
      log.warn({ file: name, err: error }, 'journal: could not remove a leftover temp file'),
    );
  }
}

function noticeFromJSON(json: Entry['notice']): Notice {
  return {
    id: json.id,
    provider: json.provider,
    kind: json.kind,
    deadline: json.deadline === null ? null : new Date(json.deadline),
    detectedAt: new Date(json.detectedAt),
    instance: json.instance,
    raw: json.raw,
    // A resumed plan must keep sparing destructive steps on an advisory notice.
    ...(json.advisory === true ? { advisory: true } : {}),
    ...(json.reasons?.length ? { reasons: json.reasons } : {}),
  };
}
