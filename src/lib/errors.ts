/**
 * Every error class preemptd throws, and the stable `code` of every error it raises on
 * purpose; docs/errors.md lists each code (test/unit/errors-doc.test.ts keeps the two in
 * step). Messages never contain secrets: callers pass redacted values only.
 * Two errors keep the shape of a platform error on purpose, so callers treat them as one:
 * a store's stopped transfer (`abortError()` in stores/types.ts, an AbortError) and a failed
 * read of the file reading thread (snapshots/read.ts, with the errno `code` of node:fs).
 */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_STATE_DIR'
  | 'ERR_USAGE'
  | 'ERR_PROVIDER_DETECT'
  | 'ERR_AGENT_API'
  | 'ERR_METADATA_HTTP'
  | 'ERR_METADATA_TIMEOUT'
  | 'ERR_METADATA_BODY'
  | 'ERR_METADATA_UNREACHABLE'
  | 'ERR_METADATA_CANCELLED'
  | 'ERR_TOKEN_TIMEOUT'
  | 'ERR_STEP_TIMEOUT'
  | 'ERR_STEP_FAILED'
  | 'ERR_SIGNAL_TARGET'
  | 'ERR_COMMAND'
  | 'ERR_LOCATION'
  | 'ERR_STORE'
  | 'ERR_RESTORE'
  | 'ERR_PRUNE'
  | 'ERR_LISTEN'
  | 'ERR_STATE_LOCKED';

export class PreemptdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PreemptdError';
    this.code = code;
  }
}

/** One problem in a config file; `path` is the field path such as `steps[2].signal.signal`. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** Invalid configuration: exit code 78 (EX_CONFIG), nothing starts. */
export class ConfigError extends PreemptdError {
  readonly file: string | undefined;
  readonly issues: ConfigIssue[];
  constructor(file: string | undefined, issues: ConfigIssue[]) {
    const where = file ?? '<config>';
    const lines = issues.map((issue) => `  ${issue.path ? `${issue.path}: ` : ''}${issue.message}`);
    super('ERR_CONFIG', `invalid config ${where}:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/**
 * A step failed in a way it has described itself (the message is user-facing and already
 * free of secrets); `detail` (facts such as the HTTP status or bytes moved) still reaches
 * the summary.
 */
export class StepFailure extends PreemptdError {
  readonly detail: Record<string, unknown> | undefined;
  constructor(message: string, detail?: Record<string, unknown>) {
    super('ERR_STEP_FAILED', message);
    this.name = 'StepFailure';
    this.detail = detail;
  }
}

/** Why a metadata request produced no response; providers turn these into health and log lines. */
export type MetadataFailureKind = 'timeout' | 'connection_refused' | 'connection_reset' | 'body_too_large' | 'aborted' | 'network';

const REQUEST_FAILURE_CODES = {
  timeout: 'ERR_METADATA_TIMEOUT',
  connection_refused: 'ERR_METADATA_UNREACHABLE',
  connection_reset: 'ERR_METADATA_UNREACHABLE',
  network: 'ERR_METADATA_UNREACHABLE',
  body_too_large: 'ERR_METADATA_BODY',
  aborted: 'ERR_METADATA_CANCELLED',
} as const satisfies Record<MetadataFailureKind, ErrorCode>;

export type MetadataErrorCode = (typeof REQUEST_FAILURE_CODES)[MetadataFailureKind] | 'ERR_METADATA_HTTP' | 'ERR_TOKEN_TIMEOUT';

/** A metadata request that got no (complete) response; `kind` says why, `code` follows from it. */
export class MetadataRequestError extends PreemptdError {
  declare readonly code: MetadataErrorCode;
  readonly kind: MetadataFailureKind;
  constructor(kind: MetadataFailureKind, message: string, options?: { cause?: unknown }) {
    super(REQUEST_FAILURE_CODES[kind], message, options);
    this.name = 'MetadataRequestError';
    this.kind = kind;
  }
}

/** A metadata read that failed in a way the provider understands (HTTP status, bad body). */
export class MetadataError extends PreemptdError {
  declare readonly code: MetadataErrorCode;
  readonly status: number | undefined;
  /**
   * Settles when a retry can succeed, for a failure that already has its own schedule (a
   * token request backing off): the poll loop waits for it instead of its own backoff.
   */
  retryReady: Promise<void> | undefined;
  constructor(code: MetadataErrorCode, message: string, status?: number) {
    super(code, message);
    this.name = 'MetadataError';
    this.status = status;
  }
}

/** A helper program (systemctl, nvidia-smi) is not installed (not on PATH). */
export class CommandNotFound extends PreemptdError {
  constructor(readonly command: string) {
    super('ERR_COMMAND', `${command} not found on PATH`);
    this.name = 'CommandNotFound';
  }
}

export const EXIT_CONFIG = 78;
export const EXIT_USAGE = 64;
/** `preemptd wait`: the timeout passed without a notice. */
export const EXIT_WAIT_TIMEOUT = 2;

/** The exit status of a command that ended with `error` (docs/errors.md lists them). */
export function exitCodeFor(error: unknown): number {
  if (error instanceof PreemptdError && (error.code === 'ERR_CONFIG' || error.code === 'ERR_STATE_LOCKED' || error.code === 'ERR_STATE_DIR')) return EXIT_CONFIG;
  if (error instanceof PreemptdError && error.code === 'ERR_USAGE') return EXIT_USAGE;
  return 1;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
